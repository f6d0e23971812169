"""The search index on a real Meilisearch: settings applied idempotently, a document
Meilisearch refuses found inside its batch and dead-lettered with Meilisearch's
reason while the rest is indexed, a server that cannot be reached waited out (never
a dead letter), and highlights escaped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import meilisearch
import pytest

from dataflows.guard import Backoff, Fault, GuardedPartition, Origin, Traced, classify
from dataflows.search import SearchWriter
from domain import search as rules
from domain.ids import new_id
from schemas.events import DeadLetter
from stores import search as store
from stores.search import (
    POSTS,
    EraseAuthor,
    Patch,
    Put,
    Remove,
    SearchIndex,
    SearchUnavailable,
)


class Box:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    def publish(self, letters: list[DeadLetter]) -> None:
        self.letters.extend(letters)


@pytest.fixture
def suffix(settings: Any) -> Iterator[str]:
    """Indexes of this test only (`posts_t…`), deleted after it."""
    tag = f"_t{new_id()[-8:].lower()}"
    yield tag
    client = store.connect(settings)
    for base in store.INDEXES:
        client.delete_index(base + tag)


def doc(post_id: str, title: str, body: str = "body") -> dict[str, Any]:
    return {
        "post_id": post_id,
        "title": title,
        "body": body,
        "community": "demo",
        "community_id": "c",
        "author": "alice",
        "author_id": "a",
        "created_at": 1,
        "score": 0,
        "hot": 0.0,
        "state": "live",
        "visibility": "public",
        "shadowed": False,
        "version": 1,
    }


def test_settings_are_applied_and_reapplied(settings: Any, suffix: str) -> None:
    client = store.connect(settings)
    store.ensure_indexes(client, suffix)
    store.ensure_indexes(client, suffix)  # again: no error, same settings
    applied = client.index(POSTS + suffix).get_settings()
    assert applied["rankingRules"] == store.POST_SETTINGS["rankingRules"]
    assert set(applied["filterableAttributes"]) >= {"visibility", "state", "author", "community"}
    assert applied["typoTolerance"]["enabled"] is True


def test_a_refused_document_is_dead_lettered_and_the_rest_indexed(
    settings: Any, suffix: str
) -> None:
    client = store.connect(settings)
    box = Box()
    sink = GuardedPartition(
        "search", "documents_out", SearchWriter(client, suffix), box, Backoff(0.01, 0.05)
    )
    ids = [f"p{i}-{new_id()}" for i in range(8)]
    writes: list[Any] = [Put(POSTS, doc(i, f"title {n}")) for n, i in enumerate(ids)]
    writes[5] = Put(POSTS, doc("not a valid id!", "poison"))
    writes.append(Patch(POSTS, {"post_id": ids[0], "title": "patched"}))
    writes.append(Remove(POSTS, ids[1]))
    writes.append(Patch(POSTS, {"post_id": "never-created", "title": "x"}))  # no creation
    sink.write_batch([Traced(Origin("posts", 0, 100 + n, b"{}"), w) for n, w in enumerate(writes)])
    assert [(d.offset, d.dataflow) for d in box.letters] == [(105, "search")]
    assert "invalid_document_id" in box.letters[0].reason
    stored = {d["post_id"]: d for d in store.all_documents(client, POSTS + suffix)}
    expected = set(ids) - {ids[5], ids[1]}
    assert set(stored) == expected
    assert stored[ids[0]]["title"] == "patched"


def test_a_deleted_author_is_erased(settings: Any, suffix: str) -> None:
    client = store.connect(settings)
    store.ensure_indexes(client, suffix)
    gone, kept = doc(f"g-{new_id()}", "one"), doc(f"k-{new_id()}", "two")
    gone["author_id"] = "gone"
    store.write(client, [Put(POSTS, gone), Put(POSTS, kept)], suffix)
    store.write(client, [EraseAuthor(POSTS, "gone", "[deleted]")], suffix)
    stored = {d["post_id"]: d["author"] for d in store.all_documents(client, POSTS + suffix)}
    assert stored == {gone["post_id"]: "[deleted]", kept["post_id"]: "alice"}


def test_an_unreachable_server_is_transient(settings: Any) -> None:
    client = meilisearch.Client("http://127.0.0.1:9", "k", timeout=1)  # nothing listens
    with pytest.raises(SearchUnavailable) as caught:
        store.write(client, [Put(POSTS, doc("x", "y"))])
    assert classify(caught.value) is Fault.TRANSIENT
    assert classify(store.SearchRefused("bad")) is Fault.RECORD


def test_highlights_are_escaped(settings: Any, suffix: str) -> None:
    client = store.connect(settings)
    store.ensure_indexes(client, suffix)
    store.write(
        client,
        [Put(POSTS, doc(f"h-{new_id()}", 'Python <script>alert("x")</script> tips', "<b>hi</b>"))],
        suffix,
    )
    body: dict[str, object] = {
        "q": "pythn",
        "attributesToHighlight": ["title"],
        "highlightPreTag": rules.MARK_OPEN,
        "highlightPostTag": rules.MARK_CLOSE,
    }

    async def query() -> dict[str, Any]:
        index = SearchIndex(settings.meili_url, settings.meili_master_key)
        try:
            return await index.search(POSTS + suffix, body)
        finally:
            await index.close()

    hits = asyncio.run(query())["hits"]
    shown = rules.escape_highlight(hits[0]["_formatted"]["title"])
    assert shown == "<mark>Pytho</mark>n &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; tips"
