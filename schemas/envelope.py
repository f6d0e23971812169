"""The event envelope every topic carries, with strict (de)serialisation.

`encode` refuses an invalid event at the producer; `decode` raises `InvalidEvent`
with a reason that dataflows put on the dead-letter topic.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.ids import new_id
from schemas.events import EVENT_TYPES, SCREENED, TYPE_OF, Payload
from schemas.topics import Topic


class InvalidEvent(ValueError):
    """An event that does not match its declared type and version."""


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1)
    type: str
    version: int = Field(ge=1)
    time: datetime
    key: str = Field(min_length=1)
    payload: dict[str, Any]


def new_event(payload: Payload, key: str, *, time: datetime | None = None) -> Envelope:
    type_name, version = TYPE_OF[type(payload)]
    return Envelope(
        event_id=new_id(),
        type=type_name,
        version=version,
        time=time or datetime.now(UTC),
        key=key,
        payload=payload.model_dump(mode="json"),
    )


def topic_of(envelope: Envelope) -> Topic:
    try:
        return EVENT_TYPES[(envelope.type, envelope.version)][1]
    except KeyError:
        raise InvalidEvent(f"unknown event type {envelope.type} v{envelope.version}") from None


def validate(envelope: Envelope, screened: bool = False) -> Payload:
    """The typed payload of an envelope; InvalidEvent if it does not match its type.
    `screened`: the record's bytes hold no control character (see `could_hold_control`)."""
    try:
        model = EVENT_TYPES[(envelope.type, envelope.version)][0]
    except KeyError:
        raise InvalidEvent(f"unknown event type {envelope.type} v{envelope.version}") from None
    try:
        return model.model_validate(envelope.payload, context=SCREENED if screened else None)
    except ValidationError as exc:
        raise InvalidEvent(_describe(exc)) from None


# In JSON a control character is a raw byte (which the parser may refuse anyway) or an
# escape, and every escape starts with a backslash. A record with neither needs no look
# at its fields; one with a backslash (an escaped quote will do) gets the look.
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def could_hold_control(raw: bytes) -> bool:
    """Whether a JSON record could carry a control character in one of its strings
    (`translate` deletes them: several times faster than a regex search)."""
    return b"\\" in raw or len(raw.translate(None, _CONTROL_BYTES)) != len(raw)


def encode(envelope: Envelope) -> bytes:
    validate(envelope)
    return envelope.model_dump_json().encode()


def decode(raw: bytes | None) -> tuple[Envelope, Payload]:
    if raw is None:
        raise InvalidEvent("empty record value")
    try:
        envelope = Envelope.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidEvent(_describe(exc)) from None
    return envelope, validate(envelope, screened=not could_hold_control(raw))


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "record"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
