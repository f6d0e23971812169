"""Shared fixtures. Integration and e2e tests talk to the real local stack
(`bash deploy/stack.sh up`); unit tests need nothing running."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests keep their own dataflow recovery stores: they never resume from, or disturb,
# the stores of a platform started with deploy/up.sh.
os.environ.setdefault("RECOVERY_ROOT", tempfile.mkdtemp(prefix="agora-recovery-"))


@pytest.fixture(scope="session")
def settings():
    from stores.settings import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def stack(settings) -> Iterator[None]:
    """Schema migrated and topics created (both idempotent)."""
    import asyncio

    from ops.migrate import migrate_all
    from stores.kafka_admin import ensure_topics

    asyncio.run(migrate_all(settings))
    ensure_topics(settings.kafka_bootstrap)
    yield


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
