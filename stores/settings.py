"""Runtime settings: environment variables first, then the local stack's env file.

The local stack script (`deploy/stack.sh up`) writes `<state>/stack.env` with the
addresses and generated secrets of the servers it started; production sets the
same names as environment variables and ships no file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from domain.rate_limits import DEFAULTS, RateLimitConfig

REPO_ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    return Path(os.environ.get("STATE_DIR", REPO_ROOT / ".state"))


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


@dataclass(frozen=True)
class Settings:
    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str = field(repr=False)
    identity_db: str
    shard_dbs: tuple[str, ...]
    redis_url: str
    kafka_bootstrap: str
    cql_hosts: tuple[str, ...]
    cql_port: int
    cql_keyspace: str
    jwt_secret: str = field(repr=False)
    jwt_issuer: str = "agora"
    jwt_audience: str = "agora-api"
    access_ttl_seconds: int = 900
    refresh_ttl_seconds: int = 7 * 24 * 3600
    vote_archive_days: int = 180
    ring_vnodes: int = 40
    # Object store (S3 API; MinIO locally). Objects are served from a public-read
    # bucket behind `s3_public_url` (a CDN in production).
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key: str | None = field(default=None, repr=False)
    s3_secret_key: str | None = field(default=None, repr=False)
    s3_bucket: str = "agora-media"
    s3_public_url: str = ""
    # Outgoing mail through any SMTP relay (Mailpit locally).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    smtp_from: str = "agora <no-reply@agora.localhost>"
    # Emails at rest: AES-256-GCM key and the HMAC key of their lookup hash (hex).
    email_encryption_key: str = field(default="", repr=False)
    email_hash_key: str = field(default="", repr=False)
    # Unverified accounts may not post, comment or create communities when on.
    require_verified_email: bool = False
    # Uploads: bytes and pixels at most; images decoded at once per API process.
    media_max_bytes: int = 20 * 1024 * 1024
    media_max_pixels: int = 50_000_000
    media_concurrency: int = 2
    # `production` (the defaults of API.md) or `development` (what the local stack
    # writes into stack.env: loopback clients skip the per-address limits, no
    # account-age limits); see the README's "Abuse defence".
    profile: str = "production"
    rate_limits: RateLimitConfig = field(default_factory=RateLimitConfig)
    ip_hash_secret: str = field(default="", repr=False)
    trusted_proxy_header: str = ""  # e.g. X-Forwarded-For; empty: the peer address
    trusted_proxy_count: int = 1  # proxies in front of the API that append to it
    post_min_account_age_seconds: int = 24 * 3600
    comment_min_account_age_seconds: int = 3600
    duplicate_window_seconds: int = 24 * 3600
    spam_auto_shadow_ban: bool = True  # the spam dataflow shadow-bans low-trust accounts
    # API processes keep voters' standings, checked by version in the vote script
    # (api/services/access.py); off: one Postgres read per vote
    keep_voting_standings: bool = True
    # How long the API's producer holds an event for others to share its produce request
    # (librdkafka's linger.ms): the broker's CPU per event falls with the batch size,
    # and each write waits up to this long more for its acknowledgement.
    api_linger_ms: int = 5
    # Dataflows: the longest pause of a partition quiet for a second between polls (it
    # doubles from 10 ms while empty), and the seconds per epoch (state snapshot and
    # commit); see dataflows/wiring.py and the README's performance section.
    dataflow_idle_pause_max_ms: int = 100
    # A partition that returned records polls again at the next multiple of this on
    # the wall clock (0: at once); spam and search use at least 250 ms.
    dataflow_batch_interval_ms: int = 0
    dataflow_snapshot_seconds: int = 5
    # Dataflows move long-lived objects out of the garbage collector's walk every this
    # many seconds (0: never), and collect everything once every full; see
    # observability/heap.py.
    dataflow_gc_freeze_seconds: int = 60
    dataflow_gc_full_seconds: int = 3600
    # API workers and dataflows collect the young generation after this many new
    # objects (CPython's default: 700); see observability/heap.py.
    gc_young_threshold: int = 10_000
    # A target's `score.changed` goes out at most once per this interval (its first
    # change at once, the rest coalesced into one at the interval's end); its tally is
    # still written on every change. 0: every change.
    score_announce_ms: int = 500
    blocklist_dir: Path | None = None  # keywords.json and domains.json; default: bundled
    meili_url: str = "http://127.0.0.1:27700"
    meili_master_key: str = field(default="", repr=False)

    def dsn(self, database: str) -> str:
        return (
            f"postgresql://{self.pg_user}:{self.pg_password}@{self.pg_host}:{self.pg_port}"
            f"/{database}"
        )

    @property
    def recovery_root(self) -> Path:
        return Path(os.environ.get("RECOVERY_ROOT", state_dir() / "recovery"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    file_values = _read_env_file(state_dir() / "stack.env")

    def get(name: str, default: str | None = None) -> str:
        value = os.environ.get(name) or file_values.get(name) or default
        if value is None:
            raise RuntimeError(
                f"setting {name} is missing: export it or start the local stack "
                "with `bash deploy/stack.sh up`"
            )
        return value

    profile = get("AGORA_PROFILE", "production")
    if profile not in ("production", "development"):
        raise RuntimeError(f"AGORA_PROFILE must be production or development, not {profile!r}")
    development = profile == "development"
    limits = RateLimitConfig(
        enabled=get("RATE_LIMITS_ENABLED", "1").lower() not in ("0", "false", "off", "no"),
        exempt_loopback=development,
    ).with_limits(
        {
            name: value
            for name in DEFAULTS
            if (
                value := os.environ.get(f"RATE_LIMIT_{name.upper()}")
                or file_values.get(f"RATE_LIMIT_{name.upper()}")
            )
        }
    )
    age_default = "0" if development else None
    return Settings(
        pg_host=get("PG_HOST", "127.0.0.1"),
        pg_port=int(get("PG_PORT", "25432")),
        pg_user=get("PG_USER", "platform"),
        pg_password=get("PG_PASSWORD"),
        identity_db=get("PG_IDENTITY_DB", "identity"),
        shard_dbs=tuple(get("PG_SHARD_DBS", "posts_shard_0,posts_shard_1").split(",")),
        redis_url=get("REDIS_URL", "redis://127.0.0.1:26379/0"),
        kafka_bootstrap=get("KAFKA_BOOTSTRAP", "127.0.0.1:29092"),
        cql_hosts=tuple(get("CQL_HOSTS", "127.0.0.1").split(",")),
        cql_port=int(get("CQL_PORT", "29042")),
        cql_keyspace=get("CQL_KEYSPACE", "platform"),
        jwt_secret=get("JWT_SECRET"),
        access_ttl_seconds=int(get("ACCESS_TTL_SECONDS", "900")),
        vote_archive_days=int(get("VOTE_ARCHIVE_DAYS", "180")),
        s3_endpoint=get("S3_ENDPOINT", "") or None,
        s3_region=get("S3_REGION", "us-east-1"),
        s3_access_key=get("S3_ACCESS_KEY", "") or None,
        s3_secret_key=get("S3_SECRET_KEY", "") or None,
        s3_bucket=get("S3_BUCKET", "agora-media"),
        s3_public_url=get("S3_PUBLIC_URL", ""),
        smtp_host=get("SMTP_HOST", "127.0.0.1"),
        smtp_port=int(get("SMTP_PORT", "25")),
        smtp_user=get("SMTP_USER", "") or None,
        smtp_password=get("SMTP_PASSWORD", "") or None,
        smtp_starttls=_flag(get("SMTP_STARTTLS", "false")),
        smtp_from=get("SMTP_FROM", "agora <no-reply@agora.localhost>"),
        email_encryption_key=get("EMAIL_ENCRYPTION_KEY", ""),
        email_hash_key=get("EMAIL_HASH_KEY", ""),
        require_verified_email=_flag(get("REQUIRE_VERIFIED_EMAIL", "false")),
        media_max_bytes=int(get("MEDIA_MAX_BYTES", str(20 * 1024 * 1024))),
        media_max_pixels=int(get("MEDIA_MAX_PIXELS", "50000000")),
        media_concurrency=int(get("MEDIA_CONCURRENCY", "2")),
        profile=profile,
        rate_limits=limits,
        ip_hash_secret=get("IP_HASH_SECRET", ""),
        trusted_proxy_header=get("TRUSTED_PROXY_HEADER", ""),
        trusted_proxy_count=int(get("TRUSTED_PROXY_COUNT", "1")),
        post_min_account_age_seconds=int(
            get("POST_MIN_ACCOUNT_AGE_SECONDS", age_default or str(24 * 3600))
        ),
        comment_min_account_age_seconds=int(
            get("COMMENT_MIN_ACCOUNT_AGE_SECONDS", age_default or "3600")
        ),
        duplicate_window_seconds=int(get("DUPLICATE_WINDOW_SECONDS", str(24 * 3600))),
        spam_auto_shadow_ban=get("SPAM_AUTO_SHADOW_BAN", "1").lower() not in ("0", "false", "off"),
        keep_voting_standings=_flag(get("KEEP_VOTING_STANDINGS", "true")),
        api_linger_ms=int(get("API_KAFKA_LINGER_MS", "5")),
        dataflow_idle_pause_max_ms=int(get("DATAFLOW_IDLE_PAUSE_MAX_MS", "100")),
        dataflow_batch_interval_ms=int(get("DATAFLOW_BATCH_INTERVAL_MS", "0")),
        dataflow_snapshot_seconds=int(get("DATAFLOW_SNAPSHOT_SECONDS", "5")),
        dataflow_gc_freeze_seconds=int(get("DATAFLOW_GC_FREEZE_SECONDS", "60")),
        dataflow_gc_full_seconds=int(get("DATAFLOW_GC_FULL_SECONDS", "3600")),
        gc_young_threshold=int(get("GC_YOUNG_THRESHOLD", "10000")),
        score_announce_ms=int(get("SCORE_ANNOUNCE_MS", "500")),
        blocklist_dir=Path(d) if (d := get("BLOCKLIST_DIR", "")) else None,
        meili_url=get("MEILI_URL", "http://127.0.0.1:27700"),
        meili_master_key=get("MEILI_MASTER_KEY", ""),
    )


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")
