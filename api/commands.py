"""Request bodies as commands: strict shapes, unknown fields refused.

Text hygiene is checked once, for every field of every command: no C0 control
character (U+0000-U+001F) and no DEL (U+007F). Fields typed `Multiline` may also
hold tab and newline; a CRLF line end in them is stored as LF.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

NAME = r"^[A-Za-z0-9_]+$"

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_EXCEPT_TAB_NEWLINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class _MultilineText:
    """Marks a text field that may contain tab and newline (bodies, descriptions)."""


MULTILINE = _MultilineText()
Multiline = Annotated[str, MULTILINE]


def control_character(value: str, multiline: bool = False) -> str | None:
    """A description of the first control character `value` must not contain, else None."""
    found = (CONTROL_EXCEPT_TAB_NEWLINE if multiline else CONTROL).search(value)
    if found is None:
        return None
    return f"U+{ord(found.group()):04X} at position {found.start()}"


def _marked_multiline(annotation: Any) -> bool:
    if MULTILINE in getattr(annotation, "__metadata__", ()):
        return True
    return any(_marked_multiline(arg) for arg in get_args(annotation))


@cache
def _is_multiline(command: type[BaseModel], field_name: str) -> bool:
    field = command.model_fields.get(field_name)
    if field is None:
        return False
    return MULTILINE in field.metadata or _marked_multiline(field.annotation)


def _clean(value: Any, multiline: bool) -> Any:
    if isinstance(value, str):
        if multiline:
            value = value.replace("\r\n", "\n")
        bad = control_character(value, multiline)
        if bad is not None:
            allowed = " other than tab and newline" if multiline else ""
            raise PydanticCustomError(
                "control_character",
                "must not contain control characters{allowed} (found {bad})",
                {"allowed": allowed, "bad": bad},
            )
        return value
    if isinstance(value, list):
        return [_clean(item, multiline) for item in value]
    return value


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    # Every field of every command, before its own type and constraints.
    @field_validator("*", mode="before")
    @classmethod
    def no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        return _clean(value, _is_multiline(cls, info.field_name or ""))


class Register(Command):
    username: str = Field(min_length=3, max_length=20, pattern=NAME)
    email: EmailStr
    password: str = Field(min_length=8, max_length=256)


class Login(Command):
    login: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class RefreshToken(Command):
    refresh_token: str = Field(min_length=1, max_length=200)


class EmailAddress(Command):
    email: EmailStr


class VerifyEmail(EmailAddress):
    code: str = Field(pattern=r"^[0-9]{6}$")


class ConfirmPasswordReset(VerifyEmail):
    new_password: str = Field(min_length=8, max_length=256)


class DeleteAccount(Command):
    password: str = Field(min_length=1, max_length=256)


class CreateCommunity(Command):
    name: str = Field(min_length=3, max_length=21, pattern=NAME)
    description: Multiline = Field(default="", max_length=500)
    visibility: Literal["public", "restricted", "private"] = "public"


class CreatePost(Command):
    title: str = Field(min_length=1, max_length=300)
    kind: Literal["text", "link", "media"] = "text"
    body: Multiline | None = Field(default=None, max_length=40000)
    url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")
    media_id: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def matches_kind(self) -> CreatePost:
        required = {"link": "url", "media": "media_id"}.get(self.kind)
        if required and getattr(self, required) is None:
            raise ValueError(f"{required} is required for a {self.kind} post")
        return self


class CastVote(Command):
    target_id: str = Field(min_length=1, max_length=120)
    target_type: Literal["post", "comment"]
    direction: Literal[-1, 0, 1]

    # Only a JSON integer is a direction: "1" or true are refused.
    @model_validator(mode="before")
    @classmethod
    def strict_direction(cls, data: object) -> object:
        if isinstance(data, dict) and "direction" in data:
            value = data["direction"]
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError("direction must be the integer 1, 0 or -1")
        return data


class PinPost(Command):
    post_id: str = Field(min_length=1, max_length=120)
    pinned: bool = True


class EditComment(Command):
    body: Multiline = Field(min_length=1, max_length=10000)

    @field_validator("body")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("body must not be blank")
        return value


class CreateComment(EditComment):
    parent_id: str | None = Field(default=None, min_length=1, max_length=120)


class MarkRead(Command):
    """Either `ids` (the user's notifications to mark read) or `all: true`."""

    ids: list[str] | None = Field(default=None, min_length=1, max_length=100)
    all: bool = False

    @model_validator(mode="after")
    def one_of(self) -> MarkRead:
        if (self.ids is None) == (not self.all):
            raise ValueError("give either ids or all: true")
        if self.ids is not None and any(not 1 <= len(i) <= 64 for i in self.ids):
            raise ValueError("ids must be notification ids")
        return self


class UpdateCommunity(Command):
    """The settings to change (at least one)."""

    description: Multiline | None = Field(default=None, max_length=500)
    rules: Multiline | None = Field(default=None, max_length=10000)
    visibility: Literal["public", "restricted", "private"] | None = None

    @model_validator(mode="after")
    def something(self) -> UpdateCommunity:
        if self.description is None and self.rules is None and self.visibility is None:
            raise ValueError("give description, rules or visibility")
        return self


class Username(Command):
    username: str = Field(min_length=3, max_length=20, pattern=NAME)


class EditPost(Command):
    """The author's change: `title` (only within minutes of posting), `body` or `url`."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    body: Multiline | None = Field(default=None, max_length=40000)
    url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")

    @model_validator(mode="after")
    def something(self) -> EditPost:
        if self.title is None and self.body is None and self.url is None:
            raise ValueError("give title, body or url")
        return self


class ModerateContent(Command):
    target_id: str = Field(min_length=1, max_length=200)
    reason: Multiline = Field(default="", max_length=1000)


class Sanction(Command):
    username: str = Field(min_length=3, max_length=20, pattern=NAME)
    duration_hours: float = Field(default=0, ge=0, le=24 * 365 * 100)
    reason: Multiline = Field(default="", max_length=1000)


class LiftSanction(Command):
    username: str = Field(min_length=3, max_length=20, pattern=NAME)
    reason: Multiline = Field(default="", max_length=1000)


class ShadowBan(Command):
    username: str = Field(min_length=3, max_length=20, pattern=NAME)
    reason: Multiline = Field(default="", max_length=1000)
    lift: bool = False


class LockPost(Command):
    post_id: str = Field(min_length=1, max_length=120)
    locked: bool = True


class FlairPost(Command):
    post_id: str = Field(min_length=1, max_length=120)
    flair: str | None = Field(max_length=64)


class FileReport(Command):
    target_id: str = Field(min_length=1, max_length=200)
    reason: Multiline = Field(min_length=1, max_length=1000)
