"""Who may do what in a community: one place decides, from the community's
visibility and the user's standing in it.

- `public`: anyone reads; any signed-in user posts, comments and votes.
- `restricted`: anyone reads and votes; approved users and moderators post and
  comment.
- `private`: only members read anything (everyone else gets 404: existence does not
  leak); members post, comment and vote. Joining is a request a moderator approves.

Sanctions in force: a ban refuses posts, comments and votes (403 `banned`); a mute
refuses posts and comments (403 `muted`) but not votes; a shadow-ban refuses nothing:
the user's content is only hidden from everyone but them and the moderators.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from domain.errors import Forbidden, NotFound

Visibility = Literal["public", "restricted", "private"]
Role = Literal["member", "moderator", "owner"]
VISIBILITIES: tuple[Visibility, ...] = ("public", "restricted", "private")


class Banned(Forbidden):
    code = "banned"


class Muted(Forbidden):
    code = "muted"


class Locked(Forbidden):
    code = "locked"


@dataclass(frozen=True)
class Standing:
    """A (possibly anonymous) user's place in one community, now."""

    signed_in: bool = False
    role: Role | None = None
    approved: bool = False
    pending: bool = False
    banned_until: datetime | None = None
    banned: bool = False
    muted_until: datetime | None = None
    muted: bool = False
    shadow_banned: bool = False
    shadow_banned_until: datetime | None = None

    def changes_at(self) -> datetime | None:
        """When the first sanction in force runs out (None: none ever does)."""
        ends = [e for e in (self.banned_until, self.muted_until, self.shadow_banned_until) if e]
        return min(ends) if ends else None

    @property
    def member(self) -> bool:
        return self.role is not None

    @property
    def moderator(self) -> bool:
        return self.role in ("moderator", "owner")

    @property
    def owner(self) -> bool:
        return self.role == "owner"


ANONYMOUS = Standing()


def can_read(visibility: str, standing: Standing) -> bool:
    return visibility != "private" or standing.member


def can_contribute(visibility: str, standing: Standing) -> bool:
    """Post or comment, sanctions aside."""
    if not standing.signed_in or not can_read(visibility, standing):
        return False
    if visibility == "restricted":
        return standing.approved or standing.moderator
    return True


def check_read(visibility: str, standing: Standing, what: str, details: dict[str, str]) -> None:
    """NotFound (never Forbidden) for content the user may not see."""
    if not can_read(visibility, standing):
        raise NotFound(f"{what} not found", details)


def check_contribute(visibility: str, standing: Standing, details: dict[str, str]) -> None:
    """May the user post or comment here? 404 if they cannot even see it."""
    check_read(visibility, standing, "community", details)
    if standing.banned:
        raise Banned("you are banned from this community", _until(details, standing.banned_until))
    if standing.muted:
        raise Muted("you are muted in this community", _until(details, standing.muted_until))
    if not can_contribute(visibility, standing):
        if visibility == "restricted":
            raise Forbidden("only approved users may post here", details)
        raise Forbidden("only members may post here", details)


def check_vote(visibility: str, standing: Standing, details: dict[str, str]) -> None:
    check_read(visibility, standing, "target", details)
    if standing.banned:
        raise Banned("you are banned from this community", _until(details, standing.banned_until))


def check_moderator(visibility: str, standing: Standing, details: dict[str, str]) -> None:
    check_read(visibility, standing, "community", details)
    if not standing.moderator:
        raise Forbidden("moderators only", details)


def check_owner(visibility: str, standing: Standing, details: dict[str, str]) -> None:
    check_read(visibility, standing, "community", details)
    if not standing.owner:
        raise Forbidden("owners only", details)


def sees_hidden(standing: Standing) -> bool:
    """Moderators see removed and shadow-banned content (marked)."""
    return standing.moderator


def _until(details: dict[str, str], until: datetime | None) -> dict[str, str]:
    return {**details, "until": until.isoformat() if until else "permanent"}
