"""How each flow reads the log and how often it snapshots: a flow with a batch interval
fetches once per interval, and spam, whose state is a week of votes, runs longer epochs
unless told otherwise."""

from __future__ import annotations

from dataclasses import replace

from bytewax.inputs import Source

from dataflows.__main__ import epoch_seconds
from dataflows.bootstrap import JOBS
from dataflows.common import SourceItem
from dataflows.wakeups import WakeupWheel
from dataflows.wiring import (
    BATCHED_FETCH_MIN_BYTES,
    FETCH_WAIT_MS,
    PositionedKafkaSource,
    Wiring,
    fetch_config,
)
from stores.settings import get_settings


def consumer_settings(source: Source[SourceItem]) -> dict[str, str]:
    """What the flow's Kafka consumers are configured with beyond Bytewax's own."""
    assert isinstance(source, PositionedKafkaSource)
    return source._add_config


def test_a_flow_without_interval_gets_each_record_at_once() -> None:
    assert fetch_config(0) == {"fetch.wait.max.ms": FETCH_WAIT_MS}
    assert "fetch.min.bytes" not in fetch_config(-5)


def test_a_batched_flow_fetches_once_per_interval() -> None:
    config = fetch_config(2000)
    assert config == {"fetch.wait.max.ms": "2000", "fetch.min.bytes": BATCHED_FETCH_MIN_BYTES}
    assert int(BATCHED_FETCH_MIN_BYTES) >= 1 << 20


def test_a_fetch_waits_no_longer_than_the_interval() -> None:
    # a short interval bounds the hop's latency; it does not fall back to FETCH_WAIT_MS
    assert fetch_config(100)["fetch.wait.max.ms"] == "100"


def test_the_source_carries_the_flows_fetch_settings() -> None:
    settings = replace(get_settings(), dataflow_batch_interval_ms=0)
    wiring = Wiring(settings, "spam")
    batched = wiring.source(["votes"], 250)
    plain = wiring.source(["votes"])
    assert consumer_settings(batched) == fetch_config(250)
    assert consumer_settings(plain) == fetch_config(0)
    # A platform-wide interval applies to every flow, the longer of the two winning.
    wider = Wiring(replace(settings, dataflow_batch_interval_ms=400), "votes")
    assert consumer_settings(wider.source(["votes"], 250)) == fetch_config(400)


def test_spam_runs_longer_epochs_than_the_default() -> None:
    settings = replace(get_settings(), dataflow_snapshot_seconds=5)
    assert epoch_seconds(None, settings, JOBS["spam"]) == 30
    assert epoch_seconds(None, settings, JOBS["votes"]) == 5


def test_an_epoch_given_on_the_command_line_wins() -> None:
    settings = replace(get_settings(), dataflow_snapshot_seconds=5)
    assert epoch_seconds(2, settings, JOBS["spam"]) == 2
    assert epoch_seconds(None, replace(settings, dataflow_snapshot_seconds=60), JOBS["spam"]) == 60


def _sources(step: object) -> list[Source[SourceItem]]:
    found = []
    for sub in getattr(step, "substeps", []):
        if hasattr(sub, "source"):
            found.append(sub.source)
        found += _sources(sub)
    return found


def test_each_batched_flow_reads_with_its_own_interval() -> None:
    # votes 20 ms (tallies stay prompt), ranking and karma 100 ms (scores come at most
    # every SCORE_ANNOUNCE_MS per target), spam 1 s and search 250 ms (nobody waits)
    settings = replace(get_settings(), dataflow_batch_interval_ms=0)
    intervals = {"votes": 20, "ranking": 100, "karma": 100, "spam": 1000, "search": 250}
    for name, interval in intervals.items():
        (source,) = _sources(JOBS[name].build(Wiring(settings, name)))
        assert consumer_settings(source) == fetch_config(interval), name


def test_live_flows_wake_far_off_keys_from_a_wheel_and_bounded_runs_do_not() -> None:
    # A bounded run (a replay) keeps Bytewax timers: on_eof flushes what they hold.
    settings = get_settings()
    for name in ("votes", "karma", "spam", "ranking"):
        (live,) = _sources(JOBS[name].build(Wiring(settings, name)))
        (bounded,) = _sources(JOBS[name].build(Wiring(settings, name, tail=False)))
        has_wheel = isinstance(getattr(live, "wheel", None), WakeupWheel)
        assert has_wheel, name
        assert getattr(bounded, "wheel", None) is None, name
