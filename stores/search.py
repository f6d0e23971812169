"""The search indexes in Meilisearch: `posts` and `communities`, their settings, the
documents the search dataflow writes and the queries the API sends.

Nobody else names an index, a document field or a filter attribute. Settings are in
code and applied idempotently whenever a writer opens (`ensure_indexes`): Meilisearch
only enqueues a settings task, and one that changes nothing is a no-op.

Writes go through the official `meilisearch` client (sync, used by the dataflow's
sink), which waits on each task: a task Meilisearch fails is raised as
`SearchRefused` (a record's fault, dead-lettered by the guarded sink with
Meilisearch's reason); a server that cannot be reached raises a transient error and
the sink waits. Queries are one `POST /indexes/{uid}/search` over a pooled aiohttp
session (the official client has no asyncio API), so a search costs one round trip.

A replay builds into `<index>_rebuild` and swaps it in atomically (`swap_indexes`):
queries keep answering from the live index until the swap, and the rebuilt one after.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
import meilisearch
import orjson
from meilisearch.errors import MeilisearchApiError
from meilisearch.models.task import TaskInfo

from domain.errors import Unavailable
from domain.search import in_filter, quote
from stores.settings import Settings

POSTS = "posts"
COMMUNITIES = "communities"
REBUILD_SUFFIX = "_rebuild"
INDEXES = (POSTS, COMMUNITIES)
MAX_TOTAL_HITS = 1000  # how deep relevance paging goes (offset paging)
TASK_TIMEOUT_MS = 120_000
TASK_POLL_MS = 5

# Ranking: "sort" first, so sort=new and sort=top are strictly chronological / by
# score among the matches, while relevance queries (no sort) skip it. Relevance is
# Meilisearch's default text rules (all query words, fewest typos, words close
# together, title before body, earlier position, exact words), then `hot` as the
# last tie-breaker: Reddit's hot value (log10 of the score plus age / 12.5 h), which
# mixes recency and score in one number that never needs recomputing. So a query
# ranks by how well the text matches, and among equally good matches fresher,
# better-voted posts come first.
POST_SETTINGS: dict[str, object] = {
    "searchableAttributes": ["title", "body"],
    "displayedAttributes": ["*"],
    "filterableAttributes": [
        "post_id",
        "community",
        "community_id",
        "author",
        "author_id",
        "visibility",
        "state",
        "shadowed",
        "created_at",
        "score",
    ],
    "sortableAttributes": ["score", "created_at", "post_id"],
    "rankingRules": [
        "sort",
        "words",
        "typo",
        "proximity",
        "attributeRank",
        "wordPosition",
        "exactness",
        "hot:desc",
    ],
    "typoTolerance": {"enabled": True},
    "pagination": {"maxTotalHits": MAX_TOTAL_HITS},
    # Filters are used, facet search (value lookup within a facet) never: not building
    # its database takes about a quarter off each indexing batch, which freshness waits on.
    "facetSearch": False,
}
COMMUNITY_SETTINGS: dict[str, object] = {
    "searchableAttributes": ["name", "description"],
    "filterableAttributes": ["community_id", "visibility"],
    "sortableAttributes": ["member_count"],
    "rankingRules": [
        "words",
        "typo",
        "proximity",
        "attributeRank",
        "wordPosition",
        "exactness",
        "member_count:desc",
    ],
    "typoTolerance": {"enabled": True},
    "facetSearch": False,
}
SETTINGS_OF = {POSTS: POST_SETTINGS, COMMUNITIES: COMMUNITY_SETTINGS}
PRIMARY_KEY = {POSTS: "post_id", COMMUNITIES: "community_id"}

# Documents. Post: post_id, title, body, community, community_id, author, author_id,
# created_at (ms since the epoch), score, hot, state (live | removed), visibility
# (public | restricted | private | unknown), shadowed, version. Community:
# community_id, name, description, visibility, member_count.
Document = dict[str, str | int | float | bool | None]


class SearchRefused(ValueError):
    """Meilisearch failed a task for what the documents contain (the record's fault)."""


class SearchUnavailable(ConnectionError):
    """Meilisearch could not be reached or answered with a server error (transient)."""


@dataclass(frozen=True)
class Put:
    """Replace a whole document."""

    index: str
    doc: Document


@dataclass(frozen=True)
class Patch:
    """Change some fields of a document that exists (never creates one)."""

    index: str
    doc: Document


@dataclass(frozen=True)
class Remove:
    index: str
    doc_id: str


@dataclass(frozen=True)
class EraseAuthor:
    """A deleted account: every post document of `author_id` shows `name` instead."""

    index: str
    author_id: str
    name: str


Write = Put | Patch | Remove | EraseAuthor
ERASE_PAGE = 1000


# Responses uncompressed: Meilisearch compresses whatever the client accepts, and a
# compressed answer on a kept-alive connection arrived about 45 ms late every time (2-3
# ms plain) on the benchmark box; on the loopback or a LAN, compression saves nothing.
PLAIN_RESPONSES = {"Accept-Encoding": "identity"}


def connect(settings: Settings) -> meilisearch.Client:
    return meilisearch.Client(
        settings.meili_url,
        settings.meili_master_key or None,
        timeout=10,
        custom_headers=PLAIN_RESPONSES,
    )


def _wait(client: meilisearch.Client, info: TaskInfo) -> None:
    try:
        task = client.wait_for_task(
            info.task_uid, timeout_in_ms=TASK_TIMEOUT_MS, interval_in_ms=TASK_POLL_MS
        )
    except meilisearch.errors.MeilisearchTimeoutError as exc:
        raise SearchUnavailable(f"task {info.task_uid} not done: {exc}") from None
    if task.status != "succeeded":
        error = task.error or {}
        raise SearchRefused(
            f"meilisearch {task.type} task {info.task_uid} {task.status}: "
            f"{error.get('code', '?')}: {error.get('message', '')}"
        )


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, MeilisearchApiError):
        status = int(getattr(exc, "status_code", 0) or 0)
        if status >= 500 or status in (408, 429):
            return SearchUnavailable(str(exc))
        return SearchRefused(str(exc))
    if isinstance(exc, meilisearch.errors.MeilisearchCommunicationError | OSError):
        return SearchUnavailable(str(exc))
    return exc


def ensure_indexes(client: meilisearch.Client, suffix: str = "") -> None:
    """Create the indexes if missing and apply their settings (idempotent)."""
    try:
        for base in INDEXES:
            uid = base + suffix
            try:
                client.get_index(uid)
            except MeilisearchApiError as exc:
                if exc.code != "index_not_found":
                    raise
                _wait(client, client.create_index(uid, {"primaryKey": PRIMARY_KEY[base]}))
            _wait(client, client.index(uid).update_settings(SETTINGS_OF[base]))
    except Exception as exc:
        raise _translate(exc) from exc


def write(client: meilisearch.Client, batch: Sequence[Write], suffix: str = "") -> None:
    """Apply writes in order: consecutive writes of one kind to one index are one
    request; every task is waited on. A failed task raises SearchRefused (the whole
    request failed: the guarded sink splits the batch to find the document)."""
    tasks: list[TaskInfo] = []
    try:
        for kind, index, group in _groups(batch):
            target = client.index(index + suffix)
            if kind is EraseAuthor:
                for w in group:
                    tasks.extend(_erase(target, w))  # type: ignore[arg-type]
            elif kind is Put:
                tasks.append(target.add_documents([w.doc for w in group]))  # type: ignore[union-attr]
            elif kind is Patch:
                docs = [w.doc for w in group]  # type: ignore[union-attr]
                tasks.append(target.update_documents(docs, skip_creation=True))
            else:
                ids = [w.doc_id for w in group]  # type: ignore[union-attr]
                by_id = in_filter(PRIMARY_KEY[index], ids)
                tasks.append(target.delete_documents(filter=by_id))
        for info in tasks:
            _wait(client, info)
    except Exception as exc:
        raise _translate(exc) from exc


def _erase(target: meilisearch.index.Index, w: EraseAuthor) -> list[TaskInfo]:
    """Partial updates of the author's documents (a read, then writes: idempotent)."""
    key = PRIMARY_KEY[w.index]
    tasks: list[TaskInfo] = []
    offset = 0
    while True:
        page = target.get_documents(
            {
                "filter": f"author_id = {quote(w.author_id)}",
                "fields": [key],
                "offset": offset,
                "limit": ERASE_PAGE,
            }
        )
        docs = [{key: dict(d)[key], "author": w.name} for d in page.results]
        if docs:
            tasks.append(target.update_documents(docs, skip_creation=True))
        if len(page.results) < ERASE_PAGE:
            return tasks
        offset += ERASE_PAGE


def _groups(batch: Sequence[Write]) -> Iterable[tuple[type, str, list[Write]]]:
    current: list[Write] = []
    for w in batch:
        if current and (type(w) is not type(current[0]) or w.index != current[0].index):
            yield type(current[0]), current[0].index, current
            current = []
        current.append(w)
    if current:
        yield type(current[0]), current[0].index, current


def _drop(client: meilisearch.Client, uid: str) -> None:
    """Delete an index; one that does not exist is fine."""
    try:
        _wait(client, client.delete_index(uid))
    except SearchRefused as exc:
        if "index_not_found" not in str(exc):
            raise


def begin_rebuild(client: meilisearch.Client) -> None:
    """Empty rebuild indexes with the live settings (a replay writes into these)."""
    try:
        for base in INDEXES:
            _drop(client, base + REBUILD_SUFFIX)
    except Exception as exc:
        raise _translate(exc) from exc
    ensure_indexes(client, REBUILD_SUFFIX)
    ensure_indexes(client)  # the live ones exist, so the swap has a partner


def finish_rebuild(client: meilisearch.Client) -> None:
    """Swap the rebuilt indexes in (one atomic task) and drop the old ones."""
    try:
        pairs: list[Mapping[str, list[str] | bool]] = [
            {"indexes": [base, base + REBUILD_SUFFIX]} for base in INDEXES
        ]
        _wait(client, client.swap_indexes(pairs))
        for base in INDEXES:
            _drop(client, base + REBUILD_SUFFIX)
    except Exception as exc:
        raise _translate(exc) from exc


def all_documents(client: meilisearch.Client, index: str) -> list[dict[str, object]]:
    """Every document of an index (tests and operators)."""
    out: list[dict[str, object]] = []
    offset = 0
    while True:
        page = client.index(index).get_documents({"offset": offset, "limit": 1000})
        out.extend(dict(d) for d in page.results)
        if len(page.results) < 1000:
            return out
        offset += 1000


# -- queries (the API) ------------------------------------------------------------------


@dataclass
class SearchIndex:
    """The API's side: one pooled HTTP session per process, one request per query."""

    url: str
    key: str = field(repr=False)
    timeout: float = 5.0
    _session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Content-Type": "application/json", **PLAIN_RESPONSES}
            if self.key:
                headers["Authorization"] = f"Bearer {self.key}"
            self._session = aiohttp.ClientSession(
                base_url=self.url,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=30),
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )
        return self._session

    async def search(self, index: str, body: dict[str, object]) -> dict:
        """The raw search answer; an index that does not exist yet has no hits.
        Unavailable (503, Retry-After) when Meilisearch cannot answer."""
        try:
            async with self._client().post(
                f"/indexes/{index}/search", data=orjson.dumps(body)
            ) as response:
                payload = orjson.loads(await response.read())
                status = response.status
        except (TimeoutError, aiohttp.ClientError, orjson.JSONDecodeError) as exc:
            raise Unavailable(
                "search is unavailable, retry shortly", {"search": type(exc).__name__}
            ) from None
        if status == 200:
            result: dict = payload
            return result
        code = payload.get("code") if isinstance(payload, dict) else None
        if code == "index_not_found":
            return {"hits": [], "estimatedTotalHits": 0}
        if status >= 500 or status in (408, 429):
            raise Unavailable("search is unavailable, retry shortly", {"search": str(code)})
        raise RuntimeError(f"meilisearch refused a query: {status} {code}")

    async def ping(self) -> None:
        async with self._client().get("/health") as response:
            if response.status != 200:
                raise ConnectionError(f"meilisearch answered {response.status}")
            await response.read()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
