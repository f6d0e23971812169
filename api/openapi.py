"""The served OpenAPI 3.1 document, built from the same command models the routes parse."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from api import commands


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    body: type[BaseModel] | None = None
    status: int = 200
    auth: bool = False
    errors: tuple[int, ...] = ()
    query: tuple[str, ...] = ()
    idempotent: bool = False  # takes an Idempotency-Key header
    upload: bool = False  # a multipart/form-data body with a `file` part


PAGED = ("limit", "cursor")

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post",
        "/api/v1/auth/register",
        "Create an account",
        commands.Register,
        201,
        errors=(400, 409),
    ),
    Operation(
        "post",
        "/api/v1/auth/login",
        "Sign in: access + refresh token",
        commands.Login,
        errors=(400, 401),
    ),
    Operation(
        "post",
        "/api/v1/auth/refresh",
        "Rotate the refresh token",
        commands.RefreshToken,
        errors=(400, 401),
    ),
    Operation(
        "post",
        "/api/v1/auth/logout",
        "Revoke a refresh token",
        commands.RefreshToken,
        204,
        errors=(400,),
    ),
    Operation(
        "post",
        "/api/v1/auth/verify-email",
        "Verify the account's email address with the mailed 6-digit code",
        commands.VerifyEmail,
        errors=(400,),
    ),
    Operation(
        "post",
        "/api/v1/auth/verify-email/resend",
        "Mail a new verification code (202 whether or not the address is known)",
        commands.EmailAddress,
        202,
        errors=(400,),
    ),
    Operation(
        "post",
        "/api/v1/auth/password-reset",
        "Mail a password reset code (202 whether or not the address is known)",
        commands.EmailAddress,
        202,
        errors=(400,),
    ),
    Operation(
        "post",
        "/api/v1/auth/password-reset/confirm",
        "Set a new password with the mailed code; every session of the account ends",
        commands.ConfirmPasswordReset,
        errors=(400,),
    ),
    Operation(
        "post",
        "/api/v1/communities",
        "Create a community",
        commands.CreateCommunity,
        201,
        auth=True,
        errors=(400, 401, 403, 409, 422, 503),
        idempotent=True,
    ),
    Operation(
        "get",
        "/api/v1/communities",
        "Autocomplete communities by name prefix (typo tolerant; private ones to members)",
        query=("prefix", *PAGED),
        errors=(400,),
    ),
    Operation(
        "get",
        "/api/v1/search",
        "Search posts (typo tolerant, highlighted; sort = relevance, new, top)",
        query=("q", "community", "author", "sort", *PAGED),
        errors=(400, 401, 503),
    ),
    Operation("get", "/api/v1/communities/{name}", "A community", errors=(404,)),
    Operation(
        "post", "/api/v1/communities/{name}/join", "Join a community", auth=True, errors=(401, 404)
    ),
    Operation(
        "post",
        "/api/v1/communities/{name}/leave",
        "Leave a community",
        auth=True,
        errors=(401, 404),
    ),
    Operation(
        "post",
        "/api/v1/communities/{name}/posts",
        "Submit a post (materialised async)",
        commands.CreatePost,
        202,
        auth=True,
        errors=(400, 401, 403, 404, 409, 422, 503),
        idempotent=True,
    ),
    Operation(
        "get",
        "/api/v1/communities/{name}/posts",
        "A community's posts",
        errors=(400, 404),
        query=("sort", "t", *PAGED),
    ),
    Operation(
        "get",
        "/api/v1/feed",
        "The signed-in user's communities, merged",
        auth=True,
        errors=(400, 401),
        query=("sort", "t", *PAGED),
    ),
    Operation("get", "/api/v1/posts/{post_id}", "A post", errors=(404,)),
    Operation(
        "post",
        "/api/v1/communities/{name}/moderation/pin",
        "Pin or unpin a post",
        commands.PinPost,
        auth=True,
        errors=(400, 401, 403, 404, 409),
    ),
    Operation(
        "put",
        "/api/v1/votes",
        "Vote up, down or withdraw",
        commands.CastVote,
        auth=True,
        errors=(400, 401, 404, 409, 503),
    ),
    Operation(
        "post",
        "/api/v1/posts/{post_id}/comments",
        "Comment on a post or reply to a comment (materialised async)",
        commands.CreateComment,
        202,
        auth=True,
        errors=(400, 401, 403, 404, 409, 422, 503),
        idempotent=True,
    ),
    Operation(
        "get",
        "/api/v1/posts/{post_id}/comments",
        "A post's comment tree (or a comment's subtree with parent_id)",
        errors=(400, 404),
        query=("sort", "depth", "parent_id", *PAGED),
    ),
    Operation(
        "patch",
        "/api/v1/comments/{comment_id}",
        "Edit a comment (author only, materialised async)",
        commands.EditComment,
        202,
        auth=True,
        errors=(400, 401, 403, 404),
    ),
    Operation(
        "delete",
        "/api/v1/comments/{comment_id}",
        "Delete a comment: it keeps its place as [deleted] (author only)",
        status=202,
        auth=True,
        errors=(401, 403, 404),
    ),
    Operation(
        "get",
        "/api/v1/users/me",
        "The signed-in user's own profile, with email and email_verified",
        auth=True,
        errors=(401,),
    ),
    Operation(
        "delete",
        "/api/v1/users/me",
        "Delete the account (password required): PII purged, sessions ended, content"
        " shows [deleted]",
        commands.DeleteAccount,
        204,
        auth=True,
        errors=(400, 401),
    ),
    Operation("get", "/api/v1/users/{username}", "A user's profile and karma", errors=(404,)),
    Operation(
        "post",
        "/api/v1/media",
        "Upload an image (JPEG, PNG, GIF, WebP judged from its bytes; metadata stripped);"
        " 202 pending, the thumbnail follows",
        status=202,
        auth=True,
        errors=(400, 401, 413, 415),
        upload=True,
    ),
    Operation(
        "get",
        "/api/v1/media/{media_id}",
        "The signed-in user's upload: status, URLs, dimensions",
        auth=True,
        errors=(401, 404),
    ),
    Operation(
        "get",
        "/api/v1/users/{username}/comments",
        "A user's comments, newest first",
        errors=(400, 404),
        query=PAGED,
    ),
    Operation(
        "get",
        "/api/v1/notifications",
        "The signed-in user's notifications, newest first",
        auth=True,
        errors=(400, 401),
        query=("unread", *PAGED),
    ),
    Operation(
        "post",
        "/api/v1/notifications/read",
        "Mark notifications read (ids, or all)",
        commands.MarkRead,
        auth=True,
        errors=(400, 401),
    ),
    Operation(
        "get",
        "/api/v1/notifications/unread-count",
        "How many notifications are unread",
        auth=True,
        errors=(401,),
    ),
    Operation(
        "patch",
        "/api/v1/communities/{name}",
        "Change a community's description, rules or visibility (moderators)",
        commands.UpdateCommunity,
        auth=True,
        errors=(400, 401, 403, 404),
    ),
    Operation(
        "get",
        "/api/v1/communities/{name}/join-requests",
        "Pending requests to join a private community (moderators)",
        auth=True,
        errors=(401, 403, 404),
    ),
    Operation(
        "post",
        "/api/v1/communities/{name}/join-requests/{username}/approve",
        "Approve a join request (moderators)",
        auth=True,
        errors=(401, 403, 404),
    ),
    Operation(
        "post",
        "/api/v1/communities/{name}/join-requests/{username}/deny",
        "Deny a join request (moderators)",
        auth=True,
        errors=(401, 403, 404),
    ),
    Operation(
        "post",
        "/api/v1/communities/{name}/approved-users",
        "Let a user post in a restricted community (moderators)",
        commands.Username,
        auth=True,
        errors=(400, 401, 403, 404),
    ),
    Operation(
        "get",
        "/api/v1/communities/{name}/moderators",
        "A community's owners and moderators",
        errors=(401, 404),
    ),
    Operation(
        "post",
        "/api/v1/communities/{name}/moderators",
        "Make a user a moderator (owners)",
        commands.Username,
        auth=True,
        errors=(400, 401, 403, 404, 409),
    ),
    Operation(
        "delete",
        "/api/v1/communities/{name}/moderators/{username}",
        "Make a moderator a plain member again (owners)",
        status=204,
        auth=True,
        errors=(401, 403, 404, 409),
    ),
    Operation(
        "patch",
        "/api/v1/posts/{post_id}",
        "Edit a post (author; the title only within 5 minutes; materialised async)",
        commands.EditPost,
        202,
        auth=True,
        errors=(400, 401, 403, 404),
    ),
    Operation(
        "delete",
        "/api/v1/posts/{post_id}",
        "Delete a post: it leaves every listing and shows [deleted] (author)",
        status=202,
        auth=True,
        errors=(401, 403, 404),
    ),
    Operation(
        "put",
        "/api/v1/posts/{post_id}/save",
        "Save a post",
        status=204,
        auth=True,
        errors=(401, 404),
    ),
    Operation(
        "delete",
        "/api/v1/posts/{post_id}/save",
        "Unsave a post",
        status=204,
        auth=True,
        errors=(401,),
    ),
    Operation(
        "get",
        "/api/v1/users/me/saved",
        "The signed-in user's saved posts, newest saved first",
        auth=True,
        errors=(400, 401),
        query=PAGED,
    ),
    Operation(
        "get",
        "/api/v1/users/{username}/posts",
        "A user's posts, newest first",
        errors=(400, 401, 404),
        query=PAGED,
    ),
    *(
        Operation(
            "post",
            f"/api/v1/communities/{{name}}/moderation/{action}",
            summary,
            body,
            auth=True,
            errors=(400, 401, 403, 404),
        )
        for action, summary, body in (
            ("remove", "Remove a post or comment (moderators)", commands.ModerateContent),
            ("approve", "Approve a post or comment (moderators)", commands.ModerateContent),
            ("ban", "Ban a user for a while or for good (moderators)", commands.Sanction),
            ("unban", "Lift a ban (moderators)", commands.LiftSanction),
            ("mute", "Mute a user: no posts or comments (moderators)", commands.Sanction),
            ("shadow-ban", "Shadow-ban a user, or lift it (moderators)", commands.ShadowBan),
            ("lock", "Lock or unlock a post (moderators)", commands.LockPost),
            ("flair", "Set or clear a post's flair (moderators)", commands.FlairPost),
        )
    ),
    Operation(
        "get",
        "/api/v1/communities/{name}/moderation/log",
        "The mod log, newest first (public for public communities)",
        errors=(400, 401, 403, 404),
        query=PAGED,
    ),
    Operation(
        "get",
        "/api/v1/communities/{name}/moderation/queue",
        "Reported and flagged content, oldest first (moderators)",
        auth=True,
        errors=(401, 403, 404),
    ),
    Operation(
        "post",
        "/api/v1/reports",
        "Report a post or comment (one report per user per target)",
        commands.FileReport,
        201,
        auth=True,
        errors=(400, 401, 404, 409),
        idempotent=True,
    ),
    Operation("get", "/healthz", "Liveness"),
    Operation("get", "/api/v1/healthz", "Liveness"),
    Operation("get", "/readyz", "Readiness of every dependency", errors=(503,)),
    Operation("get", "/api/v1/readyz", "Readiness of every dependency", errors=(503,)),
    Operation("get", "/metrics", "Prometheus metrics"),
    Operation("get", "/api/v1/metrics", "Prometheus metrics"),
    Operation("get", "/api/v1/openapi.json", "This document"),
)

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "A retry with the same key by the same user within 24 h returns the first "
        "answer and creates nothing new. 409 while the first request runs; 422 if the "
        "key was used with another request."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}


def _operation(op: Operation) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.method + "_" + re.sub(r"[^a-z0-9]+", "_", op.path.lower()).strip("_"),
        "responses": {str(op.status): {"description": "success"}},
    }
    params = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in _path_params(op.path)
    ]
    params += [{"name": q, "in": "query", "schema": {"type": "string"}} for q in op.query]
    if op.idempotent:
        params.append(IDEMPOTENCY_KEY)
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}
            },
        }
    if op.upload:
        doc["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    if op.auth:
        doc["security"] = [{"bearer": []}]
    for status in op.errors:
        doc["responses"][str(status)] = {
            "description": "error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    if not op.path.endswith(UNLIMITED):
        doc["responses"]["429"] = {
            "description": "rate limited (anonymous requests per hashed client address, "
            "signed-in writes per user, per-action quotas)",
            "headers": RATE_LIMIT_HEADERS,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return doc


RATE_LIMIT_HEADERS = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"},
    "RateLimit-Policy": {
        "schema": {"type": "string"},
        "description": 'the tightest limit that applied, e.g. `"post";q=5;w=3600`',
    },
    "RateLimit": {
        "schema": {"type": "string"},
        "description": 'what is left of it, e.g. `"post";r=0;t=3600` (remaining, reset s)',
    },
}
UNLIMITED = ("/healthz", "/readyz", "/metrics")


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
        if op.body is not None:
            schemas[op.body.__name__] = op.body.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
    return {
        "openapi": "3.1.0",
        "info": {"title": "agora", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
