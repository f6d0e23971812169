from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import events
from schemas.envelope import Envelope, InvalidEvent, decode, encode, new_event, topic_of
from schemas.events import EVENT_TYPES, Payload, PostCreated, VoteCast
from schemas.topics import BY_NAME, CATALOG, VOTES


def vote(**overrides):
    fields: dict[str, Any] = dict(
        user_id="u1",
        target_id="t1",
        target_type="post",
        community_id="c1",
        author_id="a1",
        direction=1,
        previous=0,
        version=3,
    )
    fields.update(overrides)
    return VoteCast(**fields)


def test_round_trip_and_topic():
    event = new_event(vote(), key="t1")
    envelope, payload = decode(encode(event))
    assert envelope == event
    assert payload == vote()
    assert topic_of(event) is VOTES


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"not json", "JSON"),
        (b"{}", "event_id"),
        (
            b'{"event_id":"e","type":"vote.cast","version":1,"time":"2024-01-01T00:00:00Z",'
            b'"key":"k","payload":{"user_id":"u"}}',
            "target_id",
        ),
        (
            b'{"event_id":"e","type":"nope","version":1,"time":"2024-01-01T00:00:00Z",'
            b'"key":"k","payload":{}}',
            "unknown event type",
        ),
    ],
)
def test_invalid_records_are_refused_with_a_reason(raw, reason):
    with pytest.raises(InvalidEvent) as info:
        decode(raw)
    assert reason.lower() in str(info.value).lower()


def test_producer_side_rejects_a_payload_that_breaks_its_type():
    bad = Envelope(
        event_id="e",
        type="vote.cast",
        version=1,
        time=datetime.now(UTC),
        key="k",
        payload={**vote().model_dump(), "direction": 7},
    )
    with pytest.raises(InvalidEvent, match="direction"):
        encode(bad)


def test_unknown_fields_are_refused():
    data = {**vote().model_dump(), "extra": 1}
    with pytest.raises(ValueError):
        VoteCast(**data)


def test_every_event_type_has_a_catalogued_topic():
    for model, topic in EVENT_TYPES.values():
        assert BY_NAME[topic.name] is topic
        assert issubclass(model, Payload)
    assert all(t.partitions >= 1 for t in CATALOG)
    assert all(t.partitions > 1 for t in CATALOG if t.name != "dead-letter")


def post(title: str) -> PostCreated:
    return PostCreated(
        post_id="p",
        community_id="c",
        community_name="n",
        author_id="a",
        author_name="b",
        title=title,
        kind="text",
        created_at=datetime.now(UTC),
    )


def test_post_title_limits():
    with pytest.raises(ValueError):
        post("")


def vote_record(user_id_json: bytes) -> bytes:
    """A vote.cast record whose user_id is the given JSON string literal."""
    clean = encode(new_event(vote(user_id="PLACEHOLDER"), key="t1"))
    return clean.replace(b'"PLACEHOLDER"', user_id_json)


@pytest.mark.parametrize(
    ("literal", "code"),
    [
        (b'"a\\u0000b"', "U+0000"),
        (b'"a\\u001Fb"', "U+001F"),
        (b'"a\\bb"', "U+0008"),
        (b'"a\\fb"', "U+000C"),
        (b'"a\x7fb"', "U+007F"),  # DEL may stand raw in a JSON string
        (b'"a\\u007fb"', "U+007F"),
    ],
)
def test_control_characters_in_any_spelling_are_refused_with_the_field(literal, code):
    with pytest.raises(InvalidEvent) as info:
        decode(vote_record(literal))
    assert code in str(info.value) and "user_id" in str(info.value)


def test_allowed_escapes_decode():
    _, payload = decode(vote_record(b'"tab\\there \\"quoted\\" \\u00e9"'))
    assert isinstance(payload, VoteCast) and payload.user_id == 'tab\there "quoted" \u00e9'


def test_fields_are_looked_at_only_when_the_bytes_could_hold_a_control(monkeypatch):
    """The per-field look is skipped for a record without backslashes or control bytes
    (most of the log); any backslash brings it back."""
    plain, escaped = vote_record(b'"plain"'), vote_record(b'"with \\"quotes\\""')
    looked: list[str] = []
    real = events.control_in

    def counted(fields):
        looked.append("look")
        return real(fields)

    monkeypatch.setattr(events, "control_in", counted)
    decode(plain)
    assert looked == []
    decode(escaped)
    assert looked == ["look"]


def test_a_payload_built_in_code_is_checked_too():
    with pytest.raises(ValueError, match="U\\+0001"):
        vote(user_id="a\x01")
    with pytest.raises(ValueError, match="U\\+0000"):
        post("t\x00")
