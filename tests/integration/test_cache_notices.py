"""Postgres announces every change to a cached standing, account or community at
commit, whoever writes it; an API process's caches forget the entry at once and keep
serving the rest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from api.accounts_gate import AccountGate
from api.security import Principal
from api.services.access import Access
from domain.ids import new_id
from stores.cache_notices import Notice, NoticeListener, parse
from stores.communities import CommunityStore
from stores.users import UserStore


@pytest.fixture
async def identity(settings, stack):
    pool = await asyncpg.create_pool(settings.dsn(settings.identity_db), min_size=1, max_size=2)
    yield pool
    await pool.close()


async def a_user(pool: asyncpg.Pool) -> str:
    user_id = new_id()
    await pool.execute(
        "INSERT INTO users (user_id, username, email, password_hash) VALUES ($1, $2, $3, 'x')",
        user_id,
        f"cn{user_id[-10:].lower()}",
        f"cn{user_id[-10:].lower()}@example.com",
    )
    return user_id


async def a_community(pool: asyncpg.Pool, owner: str) -> str:
    community_id = new_id()
    await pool.execute(
        "INSERT INTO communities (community_id, name, visibility, creator_id)"
        " VALUES ($1, $2, 'public', $3)",
        community_id,
        f"cn{community_id[-10:].lower()}",
        owner,
    )
    return community_id


def reader_of(user_id: str) -> Principal:
    return Principal(user_id, "reader", 0)


def test_payloads_parse_and_garbage_is_ignored() -> None:
    assert parse("account:u1") == Notice("account", user_id="u1")
    assert parse("standing:c1:u1") == Notice("standing", community_id="c1", user_id="u1")
    assert parse("community:c1") == Notice("community", community_id="c1")
    for bad in ("", "account:", "standing:c1", "standing::u1", "other:x", "community"):
        assert parse(bad) is None


async def test_every_writer_is_heard_and_only_its_entry_is_forgotten(settings, identity):
    access = Access(CommunityStore(identity))
    gate = AccountGate(UserStore(identity, vault=None), require_verified_email=False)  # type: ignore[arg-type]
    heard: list[Notice] = []
    account_heard = asyncio.Event()
    community_heard = asyncio.Event()

    def noticed(notice: Notice) -> None:
        heard.append(notice)
        if notice.kind == "account":
            account_heard.set()
        if notice.kind == "community":
            community_heard.set()
        access.noticed(notice)
        gate.noticed(notice)

    def flowing(now: bool) -> None:
        access.notices_flowing(now)
        gate.notices_flowing(now)

    listener = NoticeListener(settings.dsn(settings.identity_db), noticed, flowing)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        owner, reader, bystander = [await a_user(identity) for _ in range(3)]
        community = await a_community(identity, owner)

        before = await access.standing(community, reader_of(reader))
        other = await access.standing(community, reader_of(bystander))
        assert not before.banned and not other.banned
        state = await gate.state(reader)
        assert state is not None and state.token_epoch == 0

        # Written straight to Postgres, as a dataflow or an operator would.
        until = datetime.now(UTC) + timedelta(hours=1)
        await identity.execute(
            "INSERT INTO sanctions (community_id, user_id, kind, until, reason, actor_id)"
            " VALUES ($1, $2, 'ban', $3, 'test', $4)",
            community,
            reader,
            until,
            owner,
        )
        await identity.execute(
            "UPDATE users SET token_epoch = token_epoch + 1 WHERE user_id = $1", reader
        )
        await asyncio.wait_for(account_heard.wait(), 10)
        assert Notice("account", user_id=reader) in heard
        assert Notice("standing", community_id=community, user_id=reader) in heard
        after = await access.standing(community, reader_of(reader))
        assert after.banned and after.banned_until == until
        state = await gate.state(reader)
        assert state is not None and state.token_epoch == 1

        # The bystander's standing is unchanged.
        assert (await access.standing(community, reader_of(bystander))) == other

        # A community's settings, cached under its id and its name, change for both.
        row = await access.community(community)
        assert (await access.community_named(row.name)).visibility == "public"
        community_heard.clear()
        await identity.execute(
            "UPDATE communities SET visibility = 'private' WHERE community_id = $1", community
        )
        await asyncio.wait_for(community_heard.wait(), 10)
        assert Notice("community", community_id=community) in heard
        assert (await access.community(community)).visibility == "private"
        assert (await access.community_named(row.name)).visibility == "private"
    finally:
        task.cancel()
