"""The shared placement reaches processes without a restart, and a writer reports a new
version only once its batch routed by the old one has finished."""

from __future__ import annotations

import asyncio
import threading
import time

import asyncpg
import pytest

from stores.placement import (
    POLL_SECONDS,
    PlacementUnavailable,
    PlacementWatcher,
    ThreadedPlacement,
)
from tests.processes import wait_for


async def bump(conn: asyncpg.Connection) -> int:
    """A version change that routes exactly as before (what every observer reloads)."""
    async with conn.transaction():
        version: int = await conn.fetchval(
            "UPDATE shard_placement SET version = version + 1 RETURNING version"
        )
        await conn.execute("SELECT pg_notify('shard_placement', $1)", str(version))
    return version


async def reported(conn: asyncpg.Connection, observer_id: str) -> int | None:
    return await conn.fetchval(
        "SELECT version FROM placement_observers WHERE observer_id = $1", observer_id
    )


@pytest.fixture
async def identity(settings, stack):
    conn = await asyncpg.connect(settings.dsn(settings.identity_db))
    yield conn
    await conn.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_change_reaches_a_running_watcher_well_within_the_poll_bound(settings, identity):
    watcher = await PlacementWatcher(
        settings.dsn(settings.identity_db), "test", seed=settings.shard_dbs
    ).start()
    try:
        assert await reported(identity, watcher.observer_id) == watcher.view.version
        version = await bump(identity)
        started = time.monotonic()
        while watcher.view.version != version:
            assert time.monotonic() - started < 5, "the watcher never adopted the change"
            await asyncio.sleep(0.005)
        # NOTIFY delivers it at once; polling would take up to POLL_SECONDS.
        assert time.monotonic() - started < POLL_SECONDS
        while await reported(identity, watcher.observer_id) != version:
            assert time.monotonic() - started < 5, "the watcher never reported the change"
            await asyncio.sleep(0.005)
    finally:
        await watcher.stop()
    assert await reported(identity, watcher.observer_id) is None


def test_a_writer_reports_a_version_only_after_its_batch(settings):
    async def on_identity(work):
        conn = await asyncpg.connect(settings.dsn(settings.identity_db))
        try:
            return await work(conn)
        finally:
            await conn.close()

    writer = ThreadedPlacement(
        settings.dsn(settings.identity_db), "test-sink", seed=settings.shard_dbs
    ).start()
    observer = writer.watcher.observer_id
    try:
        held = threading.Event()
        release = threading.Event()

        def batch() -> None:
            with writer.batch() as view:
                held.set()
                release.wait(10)
                assert view is writer.view  # the view cannot change under a batch

        worker = threading.Thread(target=batch)
        worker.start()
        held.wait(5)
        before = writer.view.version
        version = asyncio.run(on_identity(bump))
        # While the batch routed by `before` runs, the writer keeps reporting `before`.
        for _ in range(10):
            assert asyncio.run(on_identity(lambda c: reported(c, observer))) == before
            assert writer.view.version == before
            time.sleep(0.05)
        release.set()
        worker.join(5)
        wait_for(
            lambda: asyncio.run(on_identity(lambda c: reported(c, observer))) == version,
            timeout=5,
            what="the writer to report the new version after its batch",
        )
        assert writer.view.version == version
    finally:
        writer.stop()


def test_a_writer_refuses_a_view_it_cannot_confirm(settings):
    writer = ThreadedPlacement(
        settings.dsn(settings.identity_db), "test-sink", seed=settings.shard_dbs, lease=-1
    ).start()
    try:
        with pytest.raises(PlacementUnavailable), writer.batch(timeout=0.2):
            pass
    finally:
        writer.stop()


def test_a_watcher_outlives_any_error_and_a_hanging_refresh(settings, monkeypatch):
    """A refresh that raises something unforeseen, or never returns, must not end the
    watcher: its writers would stay unconfirmed (and stop writing) for good."""
    monkeypatch.setattr("stores.placement.REFRESH_TIMEOUT_SECONDS", 0.5)
    writer = ThreadedPlacement(
        settings.dsn(settings.identity_db), "test-sink", seed=settings.shard_dbs
    ).start()
    watcher = writer.watcher
    real_refresh = watcher.refresh
    faults = ["raise", "hang"]

    async def faulty_refresh():
        fault = faults.pop(0) if faults else None
        if fault == "raise":
            raise asyncpg.exceptions.InternalClientError("an error no one listed")
        if fault == "hang":
            await asyncio.Event().wait()  # a query on a connection that never answers
        return await real_refresh()

    try:
        watcher.refresh = faulty_refresh  # type: ignore[method-assign]
        confirmed = watcher.confirmed_at
        wait_for(
            lambda: not faults and watcher.confirmed_at > confirmed,
            timeout=10,
            what="the watcher to confirm again after an error and a hang",
        )
        with writer.batch(timeout=5) as view:
            assert view.ring
    finally:
        writer.stop()
