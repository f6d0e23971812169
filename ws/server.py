"""The WebSocket push server: `python -m ws --port 8001`.

A client connects to `/ws?token=<access JWT>` (or sends the token as its first
message, plain or as `{"token": ...}`); a missing, bad or expired token closes the
socket with 4401. Once signed in it first receives its undelivered notifications of
the last 24 h, then the unread count, then live pushes from its Redis channel (see
`ws/hub.py` for fan-out and the slow-client policy). Keep-alive pings go out every
`--ping-interval` seconds; a client that does not answer within `--ping-timeout`
is dropped. `GET /healthz` answers with the number of open sockets.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import asyncpg
import orjson
import redis.asyncio as aioredis
from websockets.asyncio.server import Request, Response, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from api.security import Principal, TokenService
from domain.errors import Unauthorized
from observability.metrics import WS_CONNECTIONS, exposition
from schemas.push import notification_message, notification_view, unread_message
from stores import notifications as store
from stores.pg import create_pool
from stores.redis_store import async_client, unread_key
from stores.settings import Settings
from ws.hub import Client, Hub

log = logging.getLogger("ws")

UNAUTHORIZED = 4401
AUTH_TIMEOUT = 10.0
BACKLOG_WINDOW = timedelta(hours=24)
PATHS = ("/ws", "/api/v1/ws")


@dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 8001
    queue_limit: int = 256
    ping_interval: float = 20.0
    ping_timeout: float = 20.0


def token_of(message: str | bytes) -> str:
    """The token in a first message: `{"token": "..."}` or the bare token."""
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    text = text.strip()[:4096]
    if text.startswith("{"):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            return ""
        token = data.get("token") if isinstance(data, dict) else None
        return token if isinstance(token, str) else ""
    return text


class PushServer:
    def __init__(
        self,
        options: Options,
        tokens: TokenService,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
    ) -> None:
        self.options = options
        self.tokens = tokens
        self.pool = pool
        self.redis = redis
        self.hub = Hub(redis, lambda ids: store.mark_delivered(pool, ids))

    def route(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/healthz":
            body = orjson.dumps({"status": "ok", "connections": self.hub.connections})
            return connection.respond(HTTPStatus.OK, body.decode())
        if path == "/metrics":
            WS_CONNECTIONS.set(self.hub.connections)
            return connection.respond(HTTPStatus.OK, exposition()[0].decode())
        if path not in PATHS:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        return None

    async def authenticate(self, connection: ServerConnection) -> Principal | None:
        assert connection.request is not None
        query = parse_qs(urlsplit(connection.request.path).query)
        token = (query.get("token") or [""])[0]
        if not token:
            try:
                token = token_of(await asyncio.wait_for(connection.recv(), AUTH_TIMEOUT))
            except (TimeoutError, ConnectionClosed):
                return None
        try:
            return self.tokens.verify(token)
        except Unauthorized:
            return None

    async def unread(self, user_id: str) -> int:
        cached = await self.redis.get(unread_key(user_id))
        if cached is not None:
            return int(cached)
        async with self.pool.acquire() as conn:
            return (await store.unread_counts(conn, [user_id]))[user_id]

    async def handle(self, connection: ServerConnection) -> None:
        principal = await self.authenticate(connection)
        if principal is None:
            await connection.close(UNAUTHORIZED, "invalid or missing token")
            return
        client = Client(connection, principal.user_id, self.options.queue_limit)
        try:
            await self.hub.attach(client)
            # Subscribed first, then the backlog: whatever is published from now on
            # arrives live, anything older is in storage (repeats are dropped).
            since = datetime.now(UTC) - BACKLOG_WINDOW
            rows = await store.pending(self.pool, principal.user_id, since)
            backlog = [
                (notification_message(notification_view(r)), r["notification_id"]) for r in rows
            ]
            client.backlog(backlog, unread_message(await self.unread(principal.user_id)))
            pump = asyncio.create_task(client.pump(self.hub.delivered))
            pump.add_done_callback(_quiet)
            try:
                async for _message in connection:
                    pass  # clients have nothing to say; reading keeps control frames flowing
            finally:
                pump.cancel()
        except ConnectionClosed:
            pass
        finally:
            await self.hub.detach(client)

    async def serve(self, stop: asyncio.Event) -> None:
        await self.hub.start()
        try:
            async with serve(
                self.handle,
                self.options.host,
                self.options.port,
                process_request=self.route,
                compression=None,  # per-socket zlib state would cost ~300 KiB each
                ping_interval=self.options.ping_interval,
                ping_timeout=self.options.ping_timeout,
                max_size=4096,
                max_queue=4,
                close_timeout=5,
            ):
                log.info("push server on ws://%s:%d/ws", self.options.host, self.options.port)
                await stop.wait()
        finally:
            await self.hub.stop()


def _quiet(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # a closed socket ends the pump: nothing to report


async def run(settings: Settings, options: Options, stop: asyncio.Event) -> None:
    pool = await create_pool(settings.dsn(settings.identity_db), min_size=1, max_size=10)
    redis = async_client(settings.redis_url)
    tokens = TokenService(
        settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, settings.access_ttl_seconds
    )
    try:
        await PushServer(options, tokens, pool, redis).serve(stop)
    finally:
        await redis.aclose()
        await pool.close()
