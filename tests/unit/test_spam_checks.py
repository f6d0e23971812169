from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import RejectedBySpamCheck
from domain.spam import (
    Blocklist,
    check_account_age,
    check_blocklists,
    content_digest,
    hosts_in,
    normalise,
    registrable_domain,
)

LIST = Blocklist(("buy followers", "casino bonus"), frozenset({"spam.com", "bad.blogspot.com"}))


def reason(*texts: str) -> str | None:
    try:
        check_blocklists(LIST, *texts)
    except RejectedBySpamCheck as exc:
        return str(exc.details["reason"])
    return None


def test_normalised_digest() -> None:
    assert normalise("  Hello\n\tWORLD  ") == "hello world"
    assert content_digest("post", "Hi", "a  b") == content_digest("post", "hi ", "A B")
    assert content_digest("post", "Hi", None) != content_digest("comment", "Hi", None)
    assert content_digest("post", "a b", "") != content_digest("post", "a", "b")


def test_urls_from_markdown_and_bare_text() -> None:
    text = "[x](https://A.Spam.com/p?q=1) then www.example.org, and http://10.0.0.1:80/x"
    assert hosts_in(text) == ["a.spam.com", "www.example.org", "10.0.0.1"]
    assert hosts_in("no links here, e.g. a sentence. me@mail.com") == []


def test_registrable_domain_uses_the_bundled_suffix_list() -> None:
    assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
    assert registrable_domain("localhost") == "localhost"


def test_keywords_and_domains() -> None:
    assert reason("BUY  Followers now") == "blocked_keyword"
    assert reason("buy followersx") is None
    assert reason("see spam.com") == "blocked_domain"
    assert reason("[a](http://x.y.SPAM.com/)") == "blocked_domain"
    assert reason("notspam.com and spam.com.example.org") is None
    assert reason("https://bad.blogspot.com/p") == "blocked_domain"
    assert reason("https://good.blogspot.com/p") is None


def test_bundled_lists_load() -> None:
    bundled = Blocklist.load()
    assert "make money fast" in bundled.keywords
    assert "spam-example.com" in bundled.domains


def test_account_age() -> None:
    now = datetime(2026, 12, 2, tzinfo=UTC)
    check_account_age(now - timedelta(hours=25), now, timedelta(hours=24), "post")
    check_account_age(now, now, timedelta(0), "post")
    with pytest.raises(RejectedBySpamCheck) as caught:
        check_account_age(now - timedelta(minutes=30), now, timedelta(hours=1), "comment")
    assert caught.value.details == {"reason": "account_too_new", "retry_in_seconds": 1800}
