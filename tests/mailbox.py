"""Reading delivered mail from the local Mailpit server (its HTTP API), for tests."""

from __future__ import annotations

import re
import time

import httpx

from stores.settings import state_dir


def mailpit_url() -> str:
    from stores.settings import _read_env_file

    return _read_env_file(state_dir() / "stack.env")["MAILPIT_URL"]


def messages_to(address: str) -> list[dict[str, object]]:
    """Summaries of the messages delivered to `address`, newest first."""
    answer = httpx.get(
        f"{mailpit_url()}/api/v1/search", params={"query": f'to:"{address}"'}, timeout=5
    )
    answer.raise_for_status()
    found: list[dict[str, object]] = answer.json()["messages"]
    return found


def message_text(message_id: str) -> str:
    answer = httpx.get(f"{mailpit_url()}/api/v1/message/{message_id}", timeout=5)
    answer.raise_for_status()
    text: str = answer.json()["Text"]
    return text


def wait_for_mail(address: str, count: int = 1, timeout: float = 20.0) -> list[str]:
    """The texts of the newest messages to `address` once at least `count` arrived."""
    deadline = time.monotonic() + timeout
    while True:
        found = messages_to(address)
        if len(found) >= count:
            return [message_text(str(m["ID"])) for m in found]
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} message(s) to {address} not delivered in {timeout}s")
        time.sleep(0.1)


CODE = re.compile(r"\b(\d{6})\b")


def code_in(text: str) -> str:
    found = CODE.search(text)
    assert found, f"no 6-digit code in {text!r}"
    return found.group(1)
