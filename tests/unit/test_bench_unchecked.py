"""The feed benchmark's app without the governance checks must keep tracking the
listing Lua: its functions renamed, its filters made no-ops, nothing else changed."""

from __future__ import annotations

from benchmarks.unchecked import FUNCTIONS, SUFFIX, unchecked_source
from stores.rankings import library_source


def test_unchecked_listings_rename_every_function_and_drop_the_filters() -> None:
    source = unchecked_source()
    assert source.startswith("#!lua name=bench_unchecked_listings")
    for name in FUNCTIONS:
        assert f"'{name}{SUFFIX}'" in source
        assert f"'{name}'" not in source
    assert "local function hidden(meta, ctx)\n  if true then return false end" in source
    # every other line is the platform's
    added = {"  if true then return false end", "  if true then return tonumber(meta[3]) or 0 end"}
    platform_lines = library_source().splitlines()
    assert len(source.splitlines()) == len(platform_lines) + len(added)
