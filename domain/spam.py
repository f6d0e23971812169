"""Pre-publish spam checks as pure logic: keyword and domain blocklists, the normalised
content digest behind duplicate detection, account-age limits. The API runs them
before it publishes anything (`api/services/prepublish.py`); a failed check names its
reason: `blocked_keyword`, `blocked_domain`, `duplicate`, `account_too_new`."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import tldextract
from urlextract import URLExtract

from domain.errors import RejectedBySpamCheck

DATA = Path(__file__).parent / "blocklists"

# The Public Suffix List snapshot bundled with tldextract: no network at runtime.
_SUFFIXES = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
_WHITESPACE = re.compile(r"\s+")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


@lru_cache(maxsize=1)
def _url_finder() -> URLExtract:
    return URLExtract(extract_email=False)


def normalise(text: str) -> str:
    """Compatibility-fold, lowercase, trim and collapse whitespace."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def content_digest(*parts: str | None) -> str:
    """SHA-256 of the normalised content (the parts in order, absent ones empty)."""
    text = "\x1f".join(normalise(p or "") for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()


def hosts_in(*texts: str | None) -> list[str]:
    """Host names of the links in the texts: markdown links and bare URLs, with or
    without a scheme, lowercased, without port or trailing dot."""
    hosts: list[str] = []
    for text in texts:
        if not text:
            continue
        for url in _url_finder().find_urls(text, only_unique=True, check_dns=False):
            candidate = url if _SCHEME.match(url) else f"http://{url}"
            host = _host_of(candidate)
            if host and host not in hosts:
                hosts.append(host)
    return hosts


def _host_of(url: str) -> str:
    rest = _SCHEME.sub("", url, count=1)
    host = re.split(r"[/?#\\]", rest, maxsplit=1)[0].rsplit("@", 1)[-1]
    if host.startswith("["):
        return host.split("]")[0].strip("[")
    return host.split(":")[0].rstrip(".").lower()


def registrable_domain(host: str) -> str:
    """The domain under its public suffix (`a.b.example.co.uk` -> `example.co.uk`);
    the host itself when it has none (an address, a bare word)."""
    parts = _SUFFIXES.extract_str(host)
    return parts.top_domain_under_public_suffix or host


@dataclass(frozen=True)
class Blocklist:
    keywords: tuple[str, ...]
    domains: frozenset[str]

    @classmethod
    def load(cls, directory: Path = DATA) -> Blocklist:
        keywords = json.loads((directory / "keywords.json").read_text())["keywords"]
        domains = json.loads((directory / "domains.json").read_text())["domains"]
        return cls(
            tuple(sorted({normalise(k) for k in keywords if normalise(k)})),
            frozenset(d.strip().lower().rstrip(".") for d in domains if d.strip()),
        )

    @property
    def _keyword_pattern(self) -> re.Pattern[str] | None:
        if not self.keywords:
            return None
        alternatives = "|".join(re.escape(k) for k in self.keywords)
        return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")

    def blocked_keyword(self, *texts: str | None) -> str | None:
        pattern = _compiled(self)
        if pattern is None:
            return None
        for text in texts:
            if text:
                found = pattern.search(normalise(text))
                if found:
                    return found.group(0)
        return None

    def blocked_domain(self, *texts: str | None) -> str | None:
        """The first linked host that is a blocked domain or under one; checks the host
        and each parent down to its registrable domain (one set lookup each)."""
        for host in hosts_in(*texts):
            stop = registrable_domain(host)
            labels = host.split(".")
            for i in range(len(labels)):
                candidate = ".".join(labels[i:])
                if candidate in self.domains:
                    return host
                if candidate == stop:
                    break
        return None


@lru_cache(maxsize=8)
def _compiled(blocklist: Blocklist) -> re.Pattern[str] | None:
    return blocklist._keyword_pattern


def check_blocklists(blocklist: Blocklist, *texts: str | None) -> None:
    keyword = blocklist.blocked_keyword(*texts)
    if keyword is not None:
        raise RejectedBySpamCheck(
            "the content contains a blocked phrase",
            {"reason": "blocked_keyword", "keyword": keyword},
        )
    host = blocklist.blocked_domain(*texts)
    if host is not None:
        raise RejectedBySpamCheck(
            "the content links to a blocked domain", {"reason": "blocked_domain", "domain": host}
        )


def check_account_age(created: datetime, now: datetime, minimum: timedelta, action: str) -> None:
    if minimum.total_seconds() > 0 and now - created < minimum:
        wait = max(1, int((minimum - (now - created)).total_seconds()))
        raise RejectedBySpamCheck(
            f"accounts younger than {minimum} cannot {action}",
            {"reason": "account_too_new", "retry_in_seconds": wait},
        )


def duplicate() -> RejectedBySpamCheck:
    return RejectedBySpamCheck(
        "the same content was published by this account in the last 24 hours",
        {"reason": "duplicate"},
    )
