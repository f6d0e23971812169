"""search: posts, scores, communities and moderation -> Meilisearch documents.

Keyed by community (every input names it: posts and moderation are keyed by it on
the log, a score's post id carries it), so one fold sees everything that decides who
may find a post: the community's visibility, its shadow-banned authors, each post's
state. Per post it keeps the version it last sent (the content event's time, and the
moderation action's), so an older edit, a re-sent create or anything after a delete
is never sent over a newer document (Meilisearch has no conditional writes). Score
changes are coalesced: at most one document update per post per `SCORE_INTERVAL`;
the latest tally waits on the clock and is flushed at the end of a replay.

What it writes (`stores/search.py` owns the fields): a whole post document on
create; the changed fields on edit, score, removal/approval, visibility change and
shadow-ban; a delete on delete. Communities go to their own index for autocomplete.
The post's text is never kept in the state: partial updates merge in Meilisearch.

`python -m dataflows run search`; `python -m dataflows replay search` rebuilds into
new indexes and swaps them in (search keeps answering meanwhile).
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink
from meilisearch import Client

from dataflows.accounts import DeletedAccounts
from dataflows.common import Event, SourceItem, events
from dataflows.guard import Guard, Traced
from domain import ranking
from schemas.events import (
    CommunityCreated,
    CommunityUpdated,
    ContentModerated,
    DeadLetter,
    MemberSanctioned,
    MembershipChanged,
    Payload,
    PostCreated,
    PostDeleted,
    PostEdited,
    ScoreChanged,
    UserDeleted,
)
from schemas.topics import COMMUNITIES, MODERATION, POSTS, SCORES, USERS
from stores import search as store
from stores.search import Document, EraseAuthor, Patch, Put, Remove, Write
from stores.settings import Settings
from stores.users import DELETED_NAME

NAME = "search"
# Scores reach the index at most every 10 s anyway: bigger, rarer batches.
BATCH_INTERVAL_MS = 250
TOPICS = [POSTS.name, SCORES.name, COMMUNITIES.name, MODERATION.name, USERS.name]
# Seconds between two score updates of one post: search sorts by score, but need not
# follow every vote (each update is an indexing task for Meilisearch).
SCORE_INTERVAL = 10.0

SearchInput = (
    PostCreated
    | PostEdited
    | PostDeleted
    | ScoreChanged
    | CommunityCreated
    | CommunityUpdated
    | MembershipChanged
    | ContentModerated
    | MemberSanctioned
)


def clock() -> float:
    return time.time()


def micros(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def search_input(event: Event) -> SearchInput | None:
    p: Payload = event.payload
    if isinstance(p, ScoreChanged | ContentModerated):
        return p if p.target_type == "post" else None
    if isinstance(p, MemberSanctioned):
        return p if p.kind in ("shadow_ban", "unshadow_ban") else None
    if isinstance(
        p,
        PostCreated
        | PostEdited
        | PostDeleted
        | CommunityCreated
        | CommunityUpdated
        | MembershipChanged,
    ):
        return p
    return None


def erased_author(event: Event) -> Write | None:
    """A deleted account's name leaves its documents (posts written later get the name
    from `DeletedAccounts` in the writer, which asks the identity database)."""
    p = event.payload
    return EraseAuthor(store.POSTS, p.user_id, DELETED_NAME) if isinstance(p, UserDeleted) else None


def by_community(item: Traced[SearchInput]) -> str:
    return item.value.community_id  # a post's and a score's agree (dataflows/checks.py)


@dataclass
class PostRec:
    """What the fold remembers of a post (never its text)."""

    author_id: str = ""
    created: datetime | None = None
    version: int = 0  # µs of the newest content event sent
    has_content: bool = False
    state: str = "live"  # live | removed | deleted
    mod_at: int = 0  # µs of the newest removal / approval applied
    score: int = 0
    score_seq: int = 0
    score_sent_at: float = 0.0


@dataclass
class CommunityState:
    community_id: str
    name: str = ""
    description: str = ""
    visibility: str = "unknown"  # until its community event is read: hidden from others
    member_count: int = 0
    created: int = 0  # ms since the epoch
    version: int = 0
    known: bool = False
    shadowed: dict[str, tuple[bool, int]] = field(default_factory=dict)  # user -> (on, µs)
    posts: dict[str, PostRec] = field(default_factory=dict)
    scores_due: dict[str, float] = field(default_factory=dict)  # post -> when it may go


class SearchFold:
    """The fold per community. Its snapshot is the pickled state: immutable, as Bytewax
    needs, at the cost of one pickling (a deep copy would cost more)."""

    def __init__(self, resume: bytes | None) -> None:
        # our own snapshot from the recovery store, which Bytewax itself pickles
        self.state: CommunityState | None = pickle.loads(resume) if resume else None  # noqa: S301
        self.pending: list[Write] = []

    # -- Folding -----------------------------------------------------------------------

    def apply(self, value: SearchInput) -> None:
        if self.state is None:
            self.state = CommunityState(value.community_id)
        s = self.state
        if isinstance(value, PostCreated):
            self._created(s, value)
        elif isinstance(value, PostEdited):
            self._edited(s, value)
        elif isinstance(value, PostDeleted):
            self._deleted(s, value)
        elif isinstance(value, ScoreChanged):
            self._scored(s, value)
        elif isinstance(value, CommunityCreated | CommunityUpdated):
            self._community(s, value)
        elif isinstance(value, MembershipChanged):
            s.member_count = value.member_count
            if s.known:
                self._send(
                    Patch(
                        store.COMMUNITIES,
                        {"community_id": s.community_id, "member_count": s.member_count},
                    )
                )
        elif isinstance(value, ContentModerated):
            self._moderated(s, value)
        else:
            self._shadow(s, value)

    def emit(self) -> Iterable[Write]:
        out, self.pending = self.pending, []
        return out

    def notify_at(self) -> datetime | None:
        if self.state is None or not self.state.scores_due:
            return None
        return datetime.fromtimestamp(min(self.state.scores_due.values()), UTC)

    def on_notify(self) -> tuple[Iterable[Write], bool]:
        self._flush_scores(clock())
        return self.emit(), False

    def on_eof(self) -> tuple[Iterable[Write], bool]:
        """End of a bounded run (a replay): every coalesced score goes now."""
        self._flush_scores(float("inf"))
        return self.emit(), False

    def finished(self) -> bool:
        return self.state is None

    def snapshot(self) -> bytes | None:
        return None if self.state is None else pickle.dumps(self.state, pickle.HIGHEST_PROTOCOL)

    # -- inputs ------------------------------------------------------------------------

    def _send(self, write: Write) -> None:
        self.pending.append(write)

    def _post(self, s: CommunityState, post_id: str) -> PostRec:
        rec = s.posts.get(post_id)
        if rec is None:
            rec = s.posts[post_id] = PostRec()
        return rec

    def _shadowed(self, s: CommunityState, author_id: str) -> bool:
        return s.shadowed.get(author_id, (False, 0))[0]

    def _created(self, s: CommunityState, p: PostCreated) -> None:
        rec = self._post(s, p.post_id)
        if rec.has_content or rec.state == "deleted":
            return  # a re-sent create: what was sent is as new or newer
        rec.author_id, rec.created, rec.has_content = p.author_id, p.created_at, True
        rec.version = max(rec.version, micros(p.created_at))
        rec.score_sent_at = clock()
        s.scores_due.pop(p.post_id, None)
        doc: Document = {
            "post_id": p.post_id,
            "title": p.title,
            "body": p.body or "",
            "url": p.url,
            "community": p.community_name,
            "community_id": p.community_id,
            "author": p.author_name,
            "author_id": p.author_id,
            "created_at": millis(p.created_at),
            "score": rec.score,
            "hot": ranking.hot(rec.score, p.created_at),
            "state": rec.state,
            "visibility": s.visibility,
            "shadowed": self._shadowed(s, p.author_id),
            "version": rec.version,
        }
        self._send(Put(store.POSTS, doc))

    def _edited(self, s: CommunityState, p: PostEdited) -> None:
        rec = self._post(s, p.post_id)
        version = micros(p.edited_at)
        if rec.state == "deleted" or version <= rec.version:
            return  # older than what was sent
        rec.version = version
        if not rec.has_content:
            return
        doc: Document = {"post_id": p.post_id, "version": version}
        if p.title is not None:
            doc["title"] = p.title
        if p.body is not None:
            doc["body"] = p.body
        if p.url is not None:
            doc["url"] = p.url
        self._send(Patch(store.POSTS, doc))

    def _deleted(self, s: CommunityState, p: PostDeleted) -> None:
        rec = self._post(s, p.post_id)
        if rec.state == "deleted":
            return
        rec.state = "deleted"  # terminal: a tombstone, so nothing brings it back
        rec.version = max(rec.version, micros(p.deleted_at))
        s.scores_due.pop(p.post_id, None)
        self._send(Remove(store.POSTS, p.post_id))

    def _scored(self, s: CommunityState, p: ScoreChanged) -> None:
        rec = self._post(s, p.target_id)
        if p.seq <= rec.score_seq:
            return
        rec.score, rec.score_seq = p.score, p.seq
        if not rec.has_content or rec.state == "deleted":
            return  # goes with the create
        # Due times fall on shared ticks, so the updates of every busy post leave
        # together: one indexing task for Meilisearch instead of one per post.
        due = math.ceil((rec.score_sent_at + SCORE_INTERVAL) / SCORE_INTERVAL) * SCORE_INTERVAL
        if clock() >= due:
            self._send_score(p.target_id, rec)
        else:
            s.scores_due[p.target_id] = due

    def _send_score(self, post_id: str, rec: PostRec) -> None:
        rec.score_sent_at = clock()
        assert rec.created is not None
        self._send(
            Patch(
                store.POSTS,
                {
                    "post_id": post_id,
                    "score": rec.score,
                    "hot": ranking.hot(rec.score, rec.created),
                },
            )
        )

    def _flush_scores(self, now: float) -> None:
        s = self.state
        if s is None:
            return
        for post_id, due in list(s.scores_due.items()):
            if due <= now:
                del s.scores_due[post_id]
                rec = s.posts.get(post_id)
                if rec is not None and rec.has_content and rec.state != "deleted":
                    self._send_score(post_id, rec)

    def _community(self, s: CommunityState, p: CommunityCreated | CommunityUpdated) -> None:
        version = micros(p.created_at if isinstance(p, CommunityCreated) else p.updated_at)
        if s.known and version <= s.version:
            return
        before = s.visibility
        s.name, s.description, s.visibility = p.name, p.description, p.visibility
        s.version, s.known = version, True
        if isinstance(p, CommunityCreated):
            s.created = millis(p.created_at)
        self._send(
            Put(
                store.COMMUNITIES,
                {
                    "community_id": s.community_id,
                    "name": s.name,
                    "description": s.description,
                    "visibility": s.visibility,
                    "member_count": s.member_count,
                    "created_at": s.created,
                },
            )
        )
        if s.visibility != before:
            for post_id, rec in s.posts.items():
                if rec.has_content and rec.state != "deleted":
                    self._send(Patch(store.POSTS, {"post_id": post_id, "visibility": s.visibility}))

    def _moderated(self, s: CommunityState, p: ContentModerated) -> None:
        rec = self._post(s, p.post_id)
        at = micros(p.at)
        if rec.state == "deleted" or at <= rec.mod_at:
            return
        rec.mod_at = at
        rec.state = "removed" if p.action == "remove" else "live"
        if rec.has_content:
            self._send(Patch(store.POSTS, {"post_id": p.post_id, "state": rec.state}))

    def _shadow(self, s: CommunityState, p: MemberSanctioned) -> None:
        at = micros(p.at)
        on = p.kind == "shadow_ban"
        was, last = s.shadowed.get(p.user_id, (False, 0))
        if at <= last:
            return
        s.shadowed[p.user_id] = (on, at)
        if on == was:
            return
        for post_id, rec in s.posts.items():
            if rec.author_id == p.user_id and rec.has_content and rec.state != "deleted":
                self._send(Patch(store.POSTS, {"post_id": post_id, "shadowed": on}))


class SearchWriter:
    """Writes a batch in order and waits on every task (see stores/search.py); a post
    by a deleted account is written with "[deleted]" as its author."""

    def __init__(
        self, client: Client, suffix: str = "", deleted: DeletedAccounts | None = None
    ) -> None:
        self.client = client
        self.suffix = suffix
        self.deleted = deleted
        store.ensure_indexes(client, suffix)

    def write(self, batch: list[Write]) -> None:
        if self.deleted is not None:
            authors = {
                str(w.doc["author_id"])
                for w in batch
                if isinstance(w, Put) and w.index == store.POSTS and "author_id" in w.doc
            }
            gone = self.deleted.among(authors) if authors else set()
            if gone:
                batch = [
                    Put(w.index, {**w.doc, "author": DELETED_NAME})
                    if isinstance(w, Put) and w.doc.get("author_id") in gone
                    else w
                    for w in batch
                ]
        store.write(self.client, batch, self.suffix)

    def close(self) -> None:
        if self.deleted is not None:
            self.deleted.close()


@dataclass(frozen=True)
class Sinks:
    documents: Sink[Traced[Write]]


def build_flow(
    source: Source[SourceItem], sinks: Sinks, dead_letters: Sink[DeadLetter]
) -> Dataflow:
    flow = Dataflow(NAME)
    guard = Guard(NAME)
    records = events(guard, flow, source)
    inputs: Stream[Traced[SearchInput]] = guard.map("search_inputs", records, search_input)
    keyed = op.key_on("by_community", inputs, by_community)
    writes: Stream[Traced[Write]] = guard.stateful("index", keyed, SearchFold)
    erased: Stream[Traced[Write]] = guard.map("erase_authors", records, erased_author)
    op.output("documents_out", op.merge("all_writes", writes, erased), sinks.documents)
    guard.finish(dead_letters)
    return flow


def wipe(settings: Settings) -> None:
    """A replay builds into fresh rebuild indexes; the live ones keep answering until
    `finish_replay` swaps them."""
    store.begin_rebuild(store.connect(settings))


def finish_replay(settings: Settings) -> None:
    store.finish_rebuild(store.connect(settings))
