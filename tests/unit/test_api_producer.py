"""The API producer's linger comes from API_KAFKA_LINGER_MS (no broker needed: the
producer connects lazily)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from api.bootstrap import event_publisher
from stores.settings import Settings, get_settings

NOWHERE = "127.0.0.1:1"  # nothing listens on port 1


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_linger_defaults_to_5_ms_and_is_read_from_the_environment(
    fresh_settings: pytest.MonkeyPatch,
) -> None:
    fresh_settings.delenv("API_KAFKA_LINGER_MS", raising=False)
    assert get_settings().api_linger_ms == 5
    get_settings.cache_clear()
    fresh_settings.setenv("API_KAFKA_LINGER_MS", "12")
    assert get_settings().api_linger_ms == 12


@pytest.mark.parametrize("linger", [0, 10])
def test_the_api_producer_lingers_as_set(linger: int) -> None:
    settings: Settings = replace(get_settings(), kafka_bootstrap=NOWHERE, api_linger_ms=linger)
    publisher = event_publisher(settings)
    try:
        assert publisher.linger_ms == linger
    finally:
        publisher.close(timeout=1)
