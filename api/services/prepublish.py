"""Pre-publish spam checks of posts and comments, before anything reaches the log:
blocklists (keywords, domains), account age, then the duplicate claim (last, since it
records the content). A failure is 422 `rejected_by_spam_check` with the reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from api.security import Principal
from domain.errors import Unavailable
from domain.ids import created_at
from domain.spam import Blocklist, check_account_age, check_blocklists, content_digest, duplicate
from stores.duplicates import RecentContent
from stores.kafka import DeliveryPending


class PrePublishChecks:
    def __init__(
        self,
        blocklist: Blocklist,
        recent: RecentContent,
        post_min_age: timedelta,
        comment_min_age: timedelta,
    ) -> None:
        self.blocklist = blocklist
        self.recent = recent
        self.min_age = {"post": post_min_age, "comment": comment_min_age}

    @asynccontextmanager
    async def publishing(
        self, principal: Principal, action: str, *parts: str | None
    ) -> AsyncIterator[None]:
        """Check the content, then run the publish inside: a publish that failed (503)
        releases the duplicate claim so a retry can pass (one whose outcome is unknown,
        once it is known to be lost)."""
        check_blocklists(self.blocklist, *parts)
        now = datetime.now(UTC)
        check_account_age(created_at(principal.user_id), now, self.min_age[action], action)
        digest = content_digest(action, *parts)
        if not await self.recent.claim(principal.user_id, digest):
            raise duplicate()

        async def release() -> None:
            await self.recent.release(principal.user_id, digest)

        try:
            yield
        except DeliveryPending as pending:
            pending.when_settled(lost=release)
            raise
        except Unavailable:
            await release()
            raise
