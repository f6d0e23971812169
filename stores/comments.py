"""Comment tables in CQL: the API's reads and slot allocation (async), and the writes the
content and votes dataflows make (sync, idempotent).

Idempotence without reads: every write carries an explicit cell timestamp.
Content cells use the event's time (a re-applied create never undoes a later edit)
and a delete uses `TERMINAL`, above any event time, so nothing written after it —
a late edit, a re-sent create — brings a deleted comment back. Scores use the
tally's `seq`, which strictly increases per target, so an older or re-sent tally
never overwrites a newer one (last write wins by timestamp, no lightweight
transaction or read-compare needed, and safe under concurrent writers).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cassandra.cluster import Session
from cassandra.query import PreparedStatement

from domain.comments import DELETED, Comment, subtree_bounds
from domain.errors import Unavailable
from schemas.events import CommentCreated, CommentDeleted, CommentEdited
from stores.cql import LWT, execute_many, fetch

TERMINAL = 2**62  # write timestamp of deletes: later than any event time in µs
SLOT_ATTEMPTS = 40
SLOT_BLOCK = 100  # most slots one claim takes for the requests queued behind it

COMMENT_COLUMNS = (
    "comment_id, parent_id, path, author_name, body, deleted, created_at, edited_at, author_id"
)
# the content dataflow's
COMMENT_TABLES = ("comments", "comments_by_id", "comments_by_author", "comment_flags")
SCORE_TABLES = ("comment_scores",)  # the votes dataflow's


def micros(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _utc(at: datetime | None) -> datetime | None:
    # The driver returns naive datetimes in UTC.
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


@dataclass(frozen=True)
class CommentRef:
    comment_id: str
    post_id: str
    path: str
    author_id: str | None
    deleted: bool


def _comment(
    row: tuple[Any, ...], scores: dict[str, tuple[int, int]], removed: set[str]
) -> Comment:
    comment_id, parent_id, path, author, body, deleted, created, edited, author_id = row
    up, down = scores.get(comment_id, (0, 0))
    return Comment(
        comment_id=comment_id,
        parent_id=parent_id,
        path=path,
        author=DELETED if deleted else author,
        body=DELETED if deleted else body,
        deleted=bool(deleted),
        created_at=_utc(created) or created,
        edited_at=_utc(edited),
        upvotes=up,
        downvotes=down,
        author_id=author_id or "",
        removed=comment_id in removed,
    )


class CommentStore:
    """What the API reads, and the one thing it writes: child slots (compare-and-set).

    Thread reads are cached per process for `cache_seconds` (one read in flight per
    thread, shared by every request waiting for it): a hot thread is read far more
    often than it changes, and its comments appear asynchronously anyway.
    """

    def __init__(self, session: Session, cache_seconds: float = 1.0, cache_size: int = 256) -> None:
        self.session = session
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], tuple[float, list[Comment]]] = OrderedDict()
        self._reading: dict[tuple[str, str], asyncio.Future[list[Comment]]] = {}
        prep = session.prepare
        self._thread = prep(f"SELECT {COMMENT_COLUMNS} FROM comments WHERE post_id = ?")
        self._range = prep(
            f"SELECT {COMMENT_COLUMNS} FROM comments WHERE post_id = ? AND path > ? AND path < ?"
        )
        self._scores = prep(
            "SELECT comment_id, upvotes, downvotes FROM comment_scores WHERE post_id = ?"
        )
        self._flags = prep("SELECT comment_id, removed FROM comment_flags WHERE post_id = ?")
        self._by_author = prep(
            "SELECT comment_id, post_id, path, body, created_at, edited_at"
            " FROM comments_by_author WHERE author_id = ? AND comment_id < ? LIMIT ?"
        )
        self._author_comments = prep(
            "SELECT post_id, path FROM comments_by_author WHERE author_id = ?"
        )
        self._erase_author = prep(
            "UPDATE comments USING TIMESTAMP ? SET author_name = ? WHERE post_id = ? AND path = ?"
        )
        self._score = prep(
            "SELECT upvotes, downvotes FROM comment_scores WHERE post_id = ? AND comment_id = ?"
        )
        self._flag = prep("SELECT removed FROM comment_flags WHERE post_id = ? AND comment_id = ?")
        self._find = prep(
            "SELECT path, author_id, deleted FROM comments_by_id"
            " WHERE post_id = ? AND comment_id = ?"
        )
        self._read_slot = prep(
            "SELECT next_slot FROM comment_slots WHERE post_id = ? AND parent_path = ?"
        )
        self._first_slot = prep(
            "INSERT INTO comment_slots (post_id, parent_path, next_slot) VALUES (?, ?, ?)"
            " IF NOT EXISTS"
        )
        self._next_slot = prep(
            "UPDATE comment_slots SET next_slot = ? WHERE post_id = ? AND parent_path = ?"
            " IF next_slot = ?"
        )
        for statement in (self._thread, self._range):
            statement.fetch_size = 5000
        self._claims: dict[tuple[str, str], _Claims] = {}

    async def ping(self) -> None:
        await fetch(self.session, "SELECT release_version FROM system.local")

    async def by_author(
        self, author_id: str, limit: int, before: str | None
    ) -> list[tuple[str, Comment]]:
        """(post id, comment) of the author's comments, newest first, older than the id
        `before` if given."""
        rows = await fetch(self.session, self._by_author, (author_id, before or "~", limit))
        scores = await asyncio.gather(
            *(fetch(self.session, self._score, (r[1], r[0])) for r in rows)
        )
        return [
            (
                post_id,
                Comment(
                    comment_id=comment_id,
                    parent_id=None,
                    path=path,
                    author="",
                    body=body,
                    deleted=False,
                    created_at=_utc(created) or created,
                    edited_at=_utc(edited),
                    upvotes=(score[0][0] or 0) if score else 0,
                    downvotes=(score[0][1] or 0) if score else 0,
                ),
            )
            for (comment_id, post_id, path, body, created, edited), score in zip(
                rows, scores, strict=True
            )
        ]

    async def find(self, post_id: str, comment_id: str) -> CommentRef | None:
        rows = await fetch(self.session, self._find, (post_id, comment_id))
        if not rows:
            return None
        path, author_id, deleted = rows[0]
        return CommentRef(comment_id, post_id, path, author_id, bool(deleted))

    async def thread(self, post_id: str, under: str = "") -> list[Comment]:
        """Every comment of the post, or only those below the path `under`, with scores."""
        key = (post_id, under)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self._read_thread(post_id, under))
            self._reading[key] = reading
            reading.add_done_callback(lambda done: self._remember(key, done))
        return await asyncio.shield(reading)

    def _remember(self, key: tuple[str, str], done: asyncio.Future[list[Comment]]) -> None:
        self._reading.pop(key, None)
        if done.cancelled() or done.exception() is not None:
            return
        self._cache[key] = (time.monotonic() + self.cache_seconds, done.result())
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    async def _read_thread(self, post_id: str, under: str) -> list[Comment]:
        if under:
            low, high = subtree_bounds(under)
            rows_f = fetch(self.session, self._range, (post_id, low, high))
        else:
            rows_f = fetch(self.session, self._thread, (post_id,))
        rows, score_rows, flag_rows = await asyncio.gather(
            rows_f,
            fetch(self.session, self._scores, (post_id,)),
            fetch(self.session, self._flags, (post_id,)),
        )
        scores = {cid: (up or 0, down or 0) for cid, up, down in score_rows}
        removed = {cid for cid, flag in flag_rows if flag}
        return [_comment(r, scores, removed) for r in rows]

    async def removed_among(self, refs: list[tuple[str, str]]) -> set[str]:
        """Which of the (post id, comment id) pairs a moderator has removed."""
        found = await asyncio.gather(
            *(fetch(self.session, self._flag, (post, cid)) for post, cid in refs)
        )
        return {cid for (_post, cid), rows in zip(refs, found, strict=True) if rows and rows[0][0]}

    async def allocate_slot(self, post_id: str, parent_path: str) -> int:
        """The next child slot of `parent_path`, unique under any concurrency.

        Compare-and-set on the parent's counter: a read gives a guess, the LWT
        `IF next_slot = guess` takes it or returns the current value to retry with.
        Paxos makes at most one claimant win each value, so two replies never share
        a slot; a claim whose outcome is unknown (timeout) is given up and its slots
        stay unused: a gap, never a collision. Inside a process, requests for one
        parent queue up and one claim takes a block of slots for all of them, so only
        processes contend and a busy thread costs one LWT per batch, not per reply.
        """
        key = (post_id, parent_path)
        claims = self._claims.get(key)
        if claims is None:
            claims = self._claims[key] = _Claims()
        slot: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        claims.waiting.append(slot)
        if claims.task is None:
            claims.task = asyncio.create_task(self._serve_claims(key, claims))
        return await slot

    async def _serve_claims(self, key: tuple[str, str], claims: _Claims) -> None:
        try:
            while claims.waiting:
                count = min(len(claims.waiting), SLOT_BLOCK)
                first = await self._claim_block(*key, count)
                for offset in range(count):
                    waiter = claims.waiting.popleft()
                    if not waiter.done():  # a cancelled request leaves a gap
                        waiter.set_result(first + offset)
        except Exception as exc:
            while claims.waiting:
                waiter = claims.waiting.popleft()
                if not waiter.done():
                    waiter.set_exception(exc)
        finally:
            # No await since the loop found the queue empty: nobody joined meanwhile.
            self._claims.pop(key, None)

    async def _claim_block(self, post_id: str, parent_path: str, count: int) -> int:
        """Take `count` consecutive slots; returns the first."""
        rows = await fetch(self.session, self._read_slot, (post_id, parent_path))
        current: int | None = rows[0][0] if rows else None
        for attempt in range(SLOT_ATTEMPTS):
            try:
                if current is None:
                    result = await fetch(
                        self.session,
                        self._first_slot,
                        (post_id, parent_path, 1 + count),
                        execution_profile=LWT,
                    )
                    if result[0]["[applied]"]:
                        return 1
                else:
                    result = await fetch(
                        self.session,
                        self._next_slot,
                        (current + count, post_id, parent_path, current),
                        execution_profile=LWT,
                    )
                    if result[0]["[applied]"]:
                        return current
                current = result[0].get("next_slot")
            except Exception as exc:  # CAS timeouts: outcome unknown, read again
                if "Timeout" not in type(exc).__name__:
                    raise
                current = None
            # Another process won this round: back off a little, more each time.
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise Unavailable("too many concurrent replies, retry", {"retry": True})


@dataclass
class _Claims:
    """Requests waiting for a slot under one parent, and the task claiming for them."""

    waiting: deque[asyncio.Future[int]] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


def count_materialised(session: Session, post_id: str) -> int:
    """How many comments of the post the content dataflow has written so far (blocking)."""
    row = session.execute(
        "SELECT count(*) FROM comments_by_id WHERE post_id = %s", (post_id,)
    ).one()
    return int(row[0])


class CommentWriter:
    """The dataflows' writes; each call blocks until the whole batch is acknowledged."""

    def __init__(self, session: Session) -> None:
        self.session = session
        prep = session.prepare
        self._insert = prep(
            "INSERT INTO comments (post_id, path, comment_id, parent_id, author_id, author_name,"
            " body, deleted, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, false, ?)"
            " USING TIMESTAMP ?"
        )
        self._insert_ref = prep(
            "INSERT INTO comments_by_id (post_id, comment_id, path, author_id, deleted)"
            " VALUES (?, ?, ?, ?, false) USING TIMESTAMP ?"
        )
        self._insert_by_author = prep(
            "INSERT INTO comments_by_author (author_id, comment_id, post_id, path, body,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )
        self._edit = prep(
            "UPDATE comments USING TIMESTAMP ? SET body = ?, edited_at = ?"
            " WHERE post_id = ? AND path = ?"
        )
        self._edit_by_author = prep(
            "UPDATE comments_by_author USING TIMESTAMP ? SET body = ?, edited_at = ?"
            " WHERE author_id = ? AND comment_id = ?"
        )
        self._delete_by_author = prep(
            "DELETE FROM comments_by_author USING TIMESTAMP ?"
            " WHERE author_id = ? AND comment_id = ?"
        )
        self._delete = prep(
            "UPDATE comments USING TIMESTAMP ? SET body = ?, author_name = ?, author_id = null,"
            " deleted = true WHERE post_id = ? AND path = ?"
        )
        self._delete_ref = prep(
            "UPDATE comments_by_id USING TIMESTAMP ? SET author_id = null, deleted = true"
            " WHERE post_id = ? AND comment_id = ?"
        )
        self._author_comments = prep(
            "SELECT post_id, path FROM comments_by_author WHERE author_id = ?"
        )
        self._erase_author = prep(
            "UPDATE comments USING TIMESTAMP ? SET author_name = ? WHERE post_id = ? AND path = ?"
        )
        self._flag_write = prep(
            "UPDATE comment_flags USING TIMESTAMP ? SET removed = ? WHERE post_id = ?"
            " AND comment_id = ?"
        )
        self._score = prep(
            "INSERT INTO comment_scores (post_id, comment_id, upvotes, downvotes, score)"
            " VALUES (?, ?, ?, ?, ?) USING TIMESTAMP ?"
        )

    def apply(self, changes: Iterable[CommentCreated | CommentEdited | CommentDeleted]) -> None:
        execute_many(self.session, (item for c in changes for item in self._statements(c)))

    def _statements(
        self, c: CommentCreated | CommentEdited | CommentDeleted
    ) -> list[tuple[PreparedStatement, tuple[Any, ...]]]:
        if isinstance(c, CommentCreated):
            at = micros(c.created_at)
            return [
                (
                    self._insert,
                    (
                        c.post_id,
                        c.path,
                        c.comment_id,
                        c.parent_id,
                        c.author_id,
                        c.author_name,
                        c.body,
                        c.created_at,
                        at,
                    ),
                ),
                (self._insert_ref, (c.post_id, c.comment_id, c.path, c.author_id, at)),
                (
                    self._insert_by_author,
                    (c.author_id, c.comment_id, c.post_id, c.path, c.body, c.created_at, at),
                ),
            ]
        if isinstance(c, CommentEdited):
            at = micros(c.edited_at)
            return [
                (self._edit, (at, c.body, c.edited_at, c.post_id, c.path)),
                (self._edit_by_author, (at, c.body, c.edited_at, c.author_id, c.comment_id)),
            ]
        return [
            (self._delete, (TERMINAL, DELETED, DELETED, c.post_id, c.path)),
            (self._delete_ref, (TERMINAL, c.post_id, c.comment_id)),
            (self._delete_by_author, (TERMINAL, c.author_id, c.comment_id)),
        ]

    def erase_author(self, author_id: str, name: str) -> int:
        """Every comment of a deleted account shows `name` as its author. Written at
        `TERMINAL`, like deletes: a replayed create or edit can never bring the name
        back. Returns how many comments were rewritten."""
        rows = list(self.session.execute(self._author_comments, (author_id,)))
        execute_many(
            self.session,
            ((self._erase_author, (TERMINAL, name, r[0], r[1])) for r in rows),
        )
        return len(rows)

    def write_flags(self, flags: Iterable[tuple[str, str, bool, int]]) -> None:
        """(post_id, comment_id, removed, at in microseconds): a moderator's removal or
        approval, ordered by its time whenever it is re-applied."""
        execute_many(
            self.session,
            ((self._flag_write, (at, removed, post, cid)) for post, cid, removed, at in flags),
        )

    def write_scores(self, tallies: Iterable[tuple[str, str, int, int, int]]) -> None:
        """(post_id, comment_id, upvotes, downvotes, seq) rows; `seq` is the timestamp."""
        execute_many(
            self.session,
            (
                (self._score, (post, cid, up, down, up - down, seq))
                for post, cid, up, down, seq in tallies
            ),
        )
