"""The platform's listings with the governance checks taken out, for measuring what the
checks cost in the same run (`benchmarks.feed_reads`). Never part of the platform.

What "the checks" are on a listing read: the community's visibility (private pages 404
to non-members) in the service, and in the listing Lua the per-item filter of deleted,
removed and shadow-banned posts and the comment count without shadow-banned comments.
This app serves the same routes from the same code with those replaced by no-ops: the
listing functions are loaded under other names from `stores/lua/listings.lua` with
`hidden` answering false and the comment count unfiltered, and the service skips the
visibility test.

    python -m benchmarks.unchecked --port 8101 --workers 2
"""

from __future__ import annotations

from typing import Any

from sanic import Sanic

from api.security import Principal
from api.services.listings import ListingService
from benchmarks import lemmy_baseline
from benchmarks.bench_app import serve, with_baseline
from stores.rankings import RankedListings, library_source

SUFFIX = "_unchecked"
FUNCTIONS = ("rank_write", "my_votes", "my_votes_joined", "reader_votes", "rank_page", "feed_page")


def unchecked_source() -> str:
    """listings.lua with its filters made no-ops and its functions renamed."""
    source = library_source()
    edits = [
        ("#!lua name=agora_listings", "#!lua name=bench_unchecked_listings"),
        (
            "local function hidden(meta, ctx)\n",
            "local function hidden(meta, ctx)\n  if true then return false end\n",
        ),
        (
            "local function comment_count(id, meta, ctx)\n",
            "local function comment_count(id, meta, ctx)\n"
            "  if true then return tonumber(meta[3]) or 0 end\n",
        ),
    ]
    for name in FUNCTIONS:
        edits.append((f"'{name}'", f"'{name}{SUFFIX}'"))
    for old, new in edits:
        if old not in source:
            raise RuntimeError(f"listings.lua changed: {old!r} not found")
        source = source.replace(old, new)
    return source


class UncheckedListings(RankedListings):
    async def load(self) -> None:
        await self.client.function_load(unchecked_source(), replace=True)  # type: ignore[misc]

    async def _call(self, function: str, keys: list[str], args: list[Any]) -> Any:
        return await super()._call(function + SUFFIX, keys, args)


class UncheckedListingService(ListingService):
    async def _visible_community(self, name: str, principal: Principal | None) -> str:
        return (await self.access.community_named(name)).community_id


def create_app() -> Sanic:
    app = with_baseline("agora_bench_unchecked", lemmy_baseline, "lemmy")

    @app.after_server_start
    async def uncheck(app: Sanic) -> None:
        platform = app.ctx.platform
        checked = platform.listings
        listings = UncheckedListings(checked.listings.client)
        await listings.load()
        platform.listings = UncheckedListingService(
            checked.communities, listings, checked.shards, checked.access
        )

    return app


if __name__ == "__main__":
    serve(create_app, __doc__, 8101)
