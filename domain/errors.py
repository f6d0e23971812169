"""Domain errors: each names the HTTP status a client sees, with no web framework import."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from domain.rate_limits import Verdict


class DomainError(Exception):
    status = 400
    code = "bad_request"
    retry_after: int | None = None  # seconds, sent as Retry-After (429 and 503: 1)

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class ValidationFailed(DomainError):
    status = 400
    code = "validation_failed"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class EmailNotVerified(Forbidden):
    code = "email_not_verified"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Archived(DomainError):
    status = 409
    code = "archived"


class Unavailable(DomainError):
    status = 503
    code = "unavailable"


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"
    retry_after = 1


class IdempotencyKeyReused(DomainError):
    status = 422
    code = "idempotency_key_reused"


class RateLimited(DomainError):
    """429: a rate limit refused the request; its verdict names the limit and the wait."""

    status = 429
    code = "rate_limited"

    def __init__(self, verdict: Verdict) -> None:
        limit = verdict.limit.name if verdict.limit is not None else "rate"
        super().__init__(
            f"too many requests ({limit} limit); retry later",
            {"limit": limit, "retry_after": max(1, verdict.retry_after)},
        )
        self.verdict = verdict
        self.retry_after = max(1, verdict.retry_after)


class RejectedBySpamCheck(DomainError):
    """422: content failed a pre-publish check; `details.reason` says which."""

    status = 422
    code = "rejected_by_spam_check"
