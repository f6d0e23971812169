"""Every dataflow's logic in-process over bytewax.testing, with poison between good
records: the good ones come out, each bad one is one dead letter with its origin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bytewax.testing import TestingSink, run_main

from dataflows import content, karma, mentions, ranking, votes
from domain.ids import new_id
from schemas.events import DeadLetter
from tests.unit.flows import Log, a_comment, a_post, a_score, a_vote, letters_at


def sink(into: list[Any]) -> TestingSink[Any]:
    return TestingSink(into)


def test_content_materialises_good_records_and_dead_letters_poison() -> None:
    log = Log()
    good = a_post()
    log.event("posts", good)
    bad_bytes = log.raw("posts", b"\xff\xfe not json")
    empty = log.raw("posts", None)
    bad_schema = log.forged("posts", a_post(), title="")
    bad_id = log.forged("posts", a_post(), post_id="x")
    other_community = log.forged("posts", a_post(), community_id=new_id())
    later = a_post(good.community_id)
    log.event("posts", later)
    c1 = a_comment(good)
    log.event("comments", c1)
    log.event("comments", a_comment(good, path="000002"))
    bad_comment = log.forged("comments", a_comment(good), comment_id="nope")
    posts: list[Any] = []
    comments: list[Any] = []
    counts: list[Any] = []
    letters: list[DeadLetter] = []
    flow = content.build_flow(
        log.source(),
        content.Sinks(sink(posts), sink(comments), sink(counts), sink([])),
        sink(letters),
    )
    run_main(flow)
    assert [p.value[1].post_id for p in posts] == [good.post_id, later.post_id]
    assert comments[0].value.comment_id == c1.comment_id
    assert len(comments) == 2
    assert max(c.value.count for c in counts) == 2
    assert letters_at(letters) == [
        ("comments", bad_comment),
        ("posts", bad_bytes),
        ("posts", empty),
        ("posts", bad_schema),
        ("posts", bad_id),
        ("posts", other_community),
    ]
    assert all(d.dataflow == "content" and d.reason for d in letters)
    by_offset = {d.offset: d for d in letters if d.source_topic == "posts"}
    assert "title" in by_offset[bad_schema].reason
    assert "does not parse" in by_offset[bad_id].reason
    # The origin of a materialised record travels with it to the sink.
    assert (posts[0].origin.topic, posts[0].origin.offset) == ("posts", 0)


def test_votes_tally_skips_a_vote_whose_target_does_not_parse() -> None:
    log = Log()
    post = a_post()
    voters = [new_id() for _ in range(3)]
    log.event("votes", a_vote(post, voters[0], 1, 1))
    bad = log.forged("votes", a_vote(post, voters[1], 1, 2), target_id="x")
    log.event("votes", a_vote(post, voters[1], 1, 3))
    log.event("votes", a_vote(post, voters[2], -1, 4))
    tallies: list[Any] = []
    scores: list[Any] = []
    letters: list[DeadLetter] = []
    run_main(
        votes.build_flow(log.source(), votes.Sinks(sink(tallies), sink(scores)), sink(letters))
    )
    final = max((t.value for t in tallies), key=lambda t: t.seq)
    assert (final.upvotes, final.downvotes) == (2, 1)
    assert letters_at(letters) == [("votes", bad)]
    assert scores and scores[-1].value.key == post.post_id.encode()


def test_ranking_and_pins_survive_poison() -> None:
    log = Log()
    post = a_post()
    log.event("posts", post)
    log.event("scores", a_score(post, 5, 1, 1))
    bad = log.forged("scores", a_score(post, 5, 1, 2), target_id="not-a-post")
    ranks: list[Any] = []
    pins: list[Any] = []
    letters: list[DeadLetter] = []
    run_main(
        ranking.build_flow(log.source(), ranking.Sinks(sink(ranks), sink(pins)), sink(letters))
    )
    assert ranks[-1].value.score == 4
    assert letters_at(letters) == [("scores", bad)]


def test_karma_leaves_out_self_votes_and_poison() -> None:
    log = Log()
    post = a_post()
    log.event("scores", a_score(post, 3, 0, 1, author_vote=1))
    bad = log.forged("scores", a_score(post, 9, 0, 2), community_id="zzz")
    log.event("scores", a_score(post, 4, 0, 3, author_vote=1))
    out: list[Any] = []
    letters: list[DeadLetter] = []
    run_main(karma.build_flow(log.source(), karma.Sinks(sink(out)), sink(letters)))
    assert out[-1].value.post == 3  # 4 upvotes, one of them the author's own
    assert letters_at(letters) == [("scores", bad)]


def test_mentions_items_and_poison() -> None:
    log = Log()
    post = a_post(body="hi @carol")
    log.event("posts", post)
    bad = log.raw("posts", b'{"event_id": 1}')
    out: list[Any] = []
    letters: list[DeadLetter] = []
    run_main(mentions.build_flow(log.source(), mentions.Sinks(sink(out)), sink(letters)))
    assert [i.value.target_id for i in out] == [post.post_id]
    assert letters_at(letters) == [("posts", bad)]


def test_a_step_that_raises_dead_letters_only_that_record(monkeypatch: Any) -> None:
    """An exception in a step's logic for one record, not just bad input."""
    log = Log()
    posts = [a_post() for _ in range(3)]
    offsets = [log.event("posts", p) for p in posts]
    real = content.post_created

    def flaky(event: Any) -> Any:
        if event.payload.post_id == posts[1].post_id:
            raise RuntimeError("boom")
        return real(event)

    monkeypatch.setattr(content, "post_created", flaky)
    out: list[Any] = []
    letters: list[DeadLetter] = []
    flow = content.build_flow(
        log.source(),
        content.Sinks(sink(out), sink([]), sink([]), sink([])),
        sink(letters),
        timedelta(days=1),
    )
    run_main(flow)
    assert [p.value[1].post_id for p in out] == [posts[0].post_id, posts[2].post_id]
    assert letters_at(letters) == [("posts", offsets[1])]
    assert "boom" in letters[0].reason
