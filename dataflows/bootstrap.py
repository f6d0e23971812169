"""Wires each dataflow to the production log and stores, like the API's bootstrap.

A dataflow module describes its steps over a source and sinks it is given; this is
the one place that builds those from the settings (Kafka source, guarded store
sinks, Kafka outputs, the dead-letter topic). Tests build the same flows over
`bytewax.testing` sources and sinks instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bytewax.dataflow import Dataflow

from dataflows import content, karma, media, mentions, ranking, search, spam, votes
from dataflows.accounts import DeletedAccounts
from dataflows.sinks import ShardConnections
from dataflows.wiring import Wiring
from schemas.topics import SCORES, VOTES
from stores import cql
from stores import search as search_store
from stores.objects import ObjectStore
from stores.redis_store import sync_client
from stores.settings import Settings


def content_flow(w: Wiring) -> Dataflow:
    s = w.settings
    sinks = content.Sinks(
        posts=w.store(
            "posts_out",
            lambda: content.PostWriter(ShardConnections(s), sync_client(s.redis_url)),
        ),
        comments=w.store(
            "comments_out",
            lambda: content.CommentWriter(
                *cql.connect(s), sync_client(s.redis_url), DeletedAccounts(s)
            ),
        ),
        counts=w.store(
            "comment_counts_out",
            lambda: content.CountWriter(ShardConnections(s), sync_client(s.redis_url)),
        ),
        accounts=w.store(
            "accounts_out",
            lambda: content.AccountEraser(
                ShardConnections(s), *cql.connect(s), sync_client(s.redis_url)
            ),
        ),
        states=w.store(
            "states_out",
            lambda: content.StateWriter(
                ShardConnections(s), *cql.connect(s), sync_client(s.redis_url)
            ),
        ),
    )
    return content.build_flow(w.source(content.TOPICS), sinks, w.dead_letters(), _archive_after(s))


def votes_flow(w: Wiring) -> Dataflow:
    s = w.settings
    sinks = votes.Sinks(
        tallies=w.store(
            "tallies_out",
            lambda: votes.TallyWriter(
                ShardConnections(s), *cql.connect(s), sync_client(s.redis_url)
            ),
        ),
        scores=w.topic("scores_out", SCORES.name),
    )
    wheel = w.wheel()
    return votes.build_flow(
        w.source(votes.TOPICS, votes.BATCH_INTERVAL_MS, wheel),
        sinks,
        w.dead_letters(),
        _archive_after(s),
        announce_every=timedelta(milliseconds=s.score_announce_ms),
        wheel=wheel,
    )


def ranking_flow(w: Wiring) -> Dataflow:
    s = w.settings
    sinks = ranking.Sinks(
        ranks=w.store(
            "ranks_out",
            lambda: ranking.RankWriter(ShardConnections(s), sync_client(s.redis_url)),
        ),
        pins=w.store("pins_out", lambda: ranking.PinsWriter(sync_client(s.redis_url))),
    )
    wheel = w.wheel(ranking.WHEEL_SLOT)
    return ranking.build_flow(
        w.source(ranking.TOPICS, ranking.BATCH_INTERVAL_MS, wheel),
        sinks,
        w.dead_letters(),
        wheel=wheel,
    )


def karma_flow(w: Wiring) -> Dataflow:
    s = w.settings
    sinks = karma.Sinks(
        karma=w.store(
            "karma_out",
            lambda: karma.KarmaWriter(ShardConnections(s), s.identity_db, sync_client(s.redis_url)),
        )
    )
    wheel = w.wheel()
    return karma.build_flow(
        w.source(karma.TOPICS, karma.BATCH_INTERVAL_MS, wheel),
        sinks,
        w.dead_letters(),
        _archive_after(s),
        wheel=wheel,
    )


def mentions_flow(w: Wiring) -> Dataflow:
    s = w.settings
    sinks = mentions.Sinks(
        notifications=w.store(
            "notifications_out",
            lambda: mentions.NotificationWriter(
                ShardConnections(s), s.identity_db, sync_client(s.redis_url)
            ),
        )
    )
    return mentions.build_flow(w.source(mentions.TOPICS), sinks, w.dead_letters())


def media_flow(w: Wiring) -> Dataflow:
    s = w.settings
    sinks = media.Sinks(
        media=w.store("media_out", lambda: media.MediaProcessor(s, ObjectStore(s))),
    )
    return media.build_flow(w.source(media.TOPICS), sinks, w.dead_letters())


def spam_flow(w: Wiring) -> Dataflow:
    s = w.settings
    sinks = spam.Sinks(
        abuse=w.store("abuse_out", lambda: spam.AbuseWriter(s, sync_client(s.redis_url))),
        exclusions=w.topic("exclusions_out", VOTES.name),
    )
    options = spam.Options(auto_shadow_ban=s.spam_auto_shadow_ban)
    wheel = w.wheel()
    return spam.build_flow(
        w.source(spam.TOPICS, spam.BATCH_INTERVAL_MS, wheel),
        sinks,
        w.dead_letters(),
        options,
        wheel=wheel,
    )


def search_flow(w: Wiring) -> Dataflow:
    s = w.settings
    # A replay writes into the rebuild indexes, swapped in when it ends.
    suffix = search_store.REBUILD_SUFFIX if w.replay else ""
    sinks = search.Sinks(
        documents=w.store(
            "documents_out",
            lambda: search.SearchWriter(search_store.connect(s), suffix, DeletedAccounts(s)),
        )
    )
    return search.build_flow(
        w.source(search.TOPICS, search.BATCH_INTERVAL_MS), sinks, w.dead_letters()
    )


def _archive_after(settings: Settings) -> timedelta:
    return timedelta(days=settings.vote_archive_days)


@dataclass(frozen=True)
class Job:
    """An operator's unit: how to build the flow, what it reads, how to wipe its views."""

    build: Callable[[Wiring], Dataflow]
    wipe: Callable[[Settings], None]
    topics: tuple[str, ...]
    # Whether re-reading part of the log is safe without wiping (its state per key
    # does not depend on having seen the log from the start).
    backfillable: bool = False
    # Run after a replay has reached the end of the log (search swaps its indexes in).
    after_replay: Callable[[Settings], None] | None = None
    # The shortest epoch this flow runs with. Bytewax garbage-collects its recovery
    # store at every epoch with a pass over all of the store's snapshots, so a flow
    # holding many keys (spam keeps each voter for a week) pays in proportion to its
    # state, every epoch. A longer epoch means more of the log read again on resume.
    min_snapshot_seconds: int = 0


JOBS: dict[str, Job] = {
    "content": Job(content_flow, content.wipe, tuple(content.TOPICS), backfillable=True),
    "votes": Job(votes_flow, votes.wipe, tuple(votes.TOPICS)),
    "ranking": Job(ranking_flow, ranking.wipe, tuple(ranking.TOPICS)),
    "karma": Job(karma_flow, karma.wipe, tuple(karma.TOPICS)),
    "mentions": Job(mentions_flow, mentions.wipe, tuple(mentions.TOPICS), backfillable=True),
    "media": Job(media_flow, media.wipe, tuple(media.TOPICS), backfillable=True),
    "spam": Job(
        spam_flow, spam.wipe, tuple(spam.TOPICS), min_snapshot_seconds=spam.SNAPSHOT_SECONDS
    ),
    "search": Job(
        search_flow, search.wipe, tuple(search.TOPICS), after_replay=search.finish_replay
    ),
}


def build(
    name: str,
    settings: Settings,
    *,
    tail: bool = True,
    starts: dict[str, int] | None = None,
    replay: bool = False,
) -> Dataflow:
    return JOBS[name].build(Wiring(settings, name, tail, starts, replay))
