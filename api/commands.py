"""Request bodies as commands: strict shapes, unknown fields refused."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

NAME = r"^[A-Za-z0-9_]+$"


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Register(Command):
    username: str = Field(min_length=3, max_length=20, pattern=NAME)
    email: EmailStr
    password: str = Field(min_length=8, max_length=256)


class Login(Command):
    login: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class RefreshToken(Command):
    refresh_token: str = Field(min_length=1, max_length=200)


class CreateCommunity(Command):
    name: str = Field(min_length=3, max_length=21, pattern=NAME)
    description: str = Field(default="", max_length=500)
    visibility: Literal["public", "restricted", "private"] = "public"


class CreatePost(Command):
    title: str = Field(min_length=1, max_length=300)
    kind: Literal["text", "link", "media"] = "text"
    body: str | None = Field(default=None, max_length=40000)
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
    body: str = Field(min_length=1, max_length=10000)

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
