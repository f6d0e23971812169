"""Votes: the user's state and live score change atomically in Redis, then the event is
published (awaited). The votes dataflow, reading the log, owns the authoritative tally.

The voter's standing comes from this process's memory; the Redis call that records the
vote also checks that it has not changed since (`Access.voting_standing`), so a vote
costs no Postgres read and a ban still stops the very next one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from api.commands import CastVote
from api.security import Principal
from api.services.access import Access
from domain.access import check_vote
from domain.errors import Archived, NotFound, RateLimited, Unavailable
from domain.ids import community_of_post, post_of_comment
from domain.lifecycle import is_archived
from domain.rate_limits import Charge, Verdict
from schemas.envelope import new_event
from schemas.events import VoteCast
from stores.kafka import DeliveryPending, EventPublisher, run_to_completion
from stores.redis_store import Ballot, LiveVotes

STANDING_CHANGED = -3  # the vote script's answer when the voter's standing moved on
STANDING_ATTEMPTS = 3


class _StandingChanged(Exception):
    """The voter's standing changed after it was read: the vote was not recorded."""


class VoteService:
    def __init__(
        self, live: LiveVotes, publisher: EventPublisher, archive_days: int, access: Access
    ) -> None:
        self.access = access
        self.live = live
        self.publisher = publisher
        self.archive_after = timedelta(days=archive_days)

    async def cast(self, principal: Principal, cmd: CastVote) -> dict[str, Any]:
        body, _verdict = await self.cast_limited(principal, cmd, ())
        return body

    async def cast_limited(
        self, principal: Principal, cmd: CastVote, charges: Sequence[Charge]
    ) -> tuple[dict[str, Any], Verdict]:
        """Cast the vote, taking the request's rate-limit buckets in the same Redis call
        (429 when one is empty: nothing changes)."""
        target = cmd.target_id
        if cmd.target_type == "post":
            community_id = community_of_post(target)
        else:
            community_id = community_of_post(post_of_comment(target))
        for _ in range(STANDING_ATTEMPTS):
            community = await self.access.community(community_id)  # existence first
            standing, version = await self.access.voting_standing(community_id, principal)
            check_vote(community.visibility, standing, {"target_id": target})
            if is_archived(target, self.archive_after):
                raise Archived("voting is closed on archived content", {"target_id": target})
            hide = not standing.moderator  # shadow-banned authors' content: checked in the cast
            # The Redis change, its event and the undo or mark of a failed publish run
            # to the end even if the client goes away mid-request.
            try:
                return await run_to_completion(
                    self._apply(principal, cmd, charges, community_id, hide, version)
                )
            except _StandingChanged:  # nothing changed: check again against a fresh read
                self.access.forget_voting_standing(community_id, principal.user_id)
        raise Unavailable("the voter's standing keeps changing; try again", {"target_id": target})

    async def _apply(
        self,
        principal: Principal,
        cmd: CastVote,
        charges: Sequence[Charge],
        community_id: str,
        hide_shadowed: bool,
        standing_version: str,
    ) -> tuple[dict[str, Any], Verdict]:
        target = cmd.target_id
        outcome = await self.live.cast(
            Ballot(
                target,
                principal.user_id,
                cmd.direction,
                charges,
                community_id,
                hide_shadowed,
                standing_version,
            )
        )
        if outcome.status == STANDING_CHANGED:
            raise _StandingChanged
        if outcome.status == -2:
            raise RateLimited(outcome.limit)
        if outcome.status < 0:
            raise NotFound(f"{cmd.target_type} not found", {"target_id": target})
        if outcome.status > 0:
            user, version = principal.user_id, outcome.version
            event = new_event(
                VoteCast(
                    user_id=user,
                    target_id=target,
                    target_type=cmd.target_type,
                    community_id=outcome.community_id,
                    author_id=outcome.author_id,
                    direction=cmd.direction,
                    previous=outcome.previous,  # type: ignore[arg-type]
                    version=version,
                ),
                key=target,
            )

            async def revert() -> None:
                await self.live.revert(target, user, outcome.previous, version)

            async def delivered() -> None:
                await self.live.delivered(target, user, version)

            try:
                await self.publisher.publish(event)
            except DeliveryPending as pending:
                # The event may still reach the log: until its fate is known the user's
                # next vote here is re-published; undone only if it is finally lost.
                await self.live.mark_unsettled(target, user, version)
                pending.when_settled(delivered=delivered, lost=revert)
                raise
            except Unavailable:
                await revert()
                raise
            if outcome.status == 2:
                await delivered()
        body = {"target_id": target, "direction": cmd.direction, "score": outcome.score}
        return body, outcome.limit
