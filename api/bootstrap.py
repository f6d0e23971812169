"""Wires adapters to services once per process; routes only see `Platform`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import redis.asyncio as aioredis
from cassandra.cluster import Cluster

from api.accounts_gate import AccountGate
from api.mailer import SmtpSender
from api.security import TokenService
from api.services.access import Access
from api.services.accounts import AccountService
from api.services.auth import AuthService
from api.services.comments import CommentService
from api.services.communities import CommunityService
from api.services.listings import ListingService
from api.services.media import MediaService
from api.services.moderation import ModerationService
from api.services.notifications import NotificationService
from api.services.posts import PostService
from api.services.prepublish import PrePublishChecks
from api.services.search import SearchService
from api.services.users import UserService
from api.services.votes import VoteService
from domain.spam import Blocklist
from stores import cql
from stores.cache_notices import Notice, NoticeListener
from stores.codes import OneTimeCodes
from stores.comments import CommentStore
from stores.communities import CommunityStore
from stores.duplicates import RecentContent
from stores.idempotency import IdempotencyKeys
from stores.kafka import EventPublisher
from stores.karma import KarmaStore
from stores.mail_queue import MailQueue
from stores.media import MediaStore
from stores.objects import ObjectStore
from stores.pg import ShardRouter, create_pool
from stores.pii import EmailVault
from stores.posts import PostStore, RankedPostStore
from stores.rankings import RankedListings
from stores.rate_limits import RateLimiter
from stores.redis_store import LiveVotes, async_client
from stores.refresh_tokens import RefreshTokenStore
from stores.saved_posts import SavedPosts
from stores.search import SearchIndex
from stores.settings import Settings
from stores.standing_versions import StandingVersions
from stores.users import UserStore


@dataclass
class Platform:
    settings: Settings
    identity_pool: asyncpg.Pool
    shards: ShardRouter
    redis: aioredis.Redis
    publisher: EventPublisher
    tokens: TokenService
    auth: AuthService
    communities: CommunityService
    posts: PostService
    votes: VoteService
    listings: ListingService
    moderation: ModerationService
    cql_cluster: Cluster
    comments: CommentService
    users: UserService
    notifications: NotificationService
    idempotency: IdempotencyKeys
    objects: ObjectStore
    vault: EmailVault
    mail: MailQueue
    smtp: SmtpSender
    accounts: AccountService
    gate: AccountGate
    media: MediaService
    limiter: RateLimiter
    search_index: SearchIndex
    search: SearchService
    notices: NoticeListener

    async def close(self) -> None:
        await asyncio.to_thread(self.objects.close)
        await self.search_index.close()
        self.publisher.close()
        await asyncio.to_thread(self.cql_cluster.shutdown)
        await self.redis.aclose()
        await self.shards.close()
        await self.identity_pool.close()


def event_publisher(settings: Settings) -> EventPublisher:
    """The API's producer, holding each event up to API_KAFKA_LINGER_MS for others."""
    return EventPublisher(settings.kafka_bootstrap, **{"linger.ms": settings.api_linger_ms})


async def bootstrap(settings: Settings) -> Platform:
    identity_pool = await create_pool(settings.dsn(settings.identity_db), max_size=10)
    shards = await ShardRouter.connect(settings, max_size=10)
    redis = async_client(settings.redis_url)
    publisher = event_publisher(settings)
    tokens = TokenService(
        settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, settings.access_ttl_seconds
    )
    vault = EmailVault(settings.email_encryption_key, settings.email_hash_key)
    users = UserStore(identity_pool, vault)
    gate = AccountGate(users, settings.require_verified_email)
    mail = MailQueue(redis, vault)
    karma = KarmaStore(identity_pool, redis)
    accounts = AccountService(users, OneTimeCodes(redis), mail, vault, karma, gate)
    communities = CommunityStore(identity_pool)
    live = LiveVotes(redis)
    cql_cluster, cql_session = await asyncio.to_thread(cql.connect, settings)
    comment_store = await asyncio.to_thread(CommentStore, cql_session)
    post_store = PostStore(shards)
    listings = RankedListings(redis)  # its Redis functions load on first use
    objects = await asyncio.to_thread(ObjectStore, settings)
    media = MediaService(
        MediaStore(identity_pool), objects, settings.media_max_pixels, settings.media_concurrency
    )
    access = Access(
        communities,
        versions=StandingVersions(redis),  # bumped by every process, kept or not
        keep_voting_standings=settings.keep_voting_standings,
    )
    limiter = RateLimiter(redis)
    checks = PrePublishChecks(
        Blocklist.load(settings.blocklist_dir) if settings.blocklist_dir else Blocklist.load(),
        RecentContent(redis, settings.duplicate_window_seconds),
        timedelta(seconds=settings.post_min_account_age_seconds),
        timedelta(seconds=settings.comment_min_account_age_seconds),
    )
    posts = PostService(
        access, post_store, publisher, live, SavedPosts(identity_pool), media, checks
    )
    search_index = SearchIndex(settings.meili_url, settings.meili_master_key)

    def noticed(notice: Notice) -> None:
        access.noticed(notice)
        gate.noticed(notice)

    def flowing(now: bool) -> None:
        access.notices_flowing(now)
        gate.notices_flowing(now)

    notices = NoticeListener(settings.dsn(settings.identity_db), noticed, flowing)
    return Platform(
        settings=settings,
        identity_pool=identity_pool,
        shards=shards,
        redis=redis,
        publisher=publisher,
        tokens=tokens,
        auth=AuthService(
            users,
            RefreshTokenStore(identity_pool),
            tokens,
            settings.refresh_ttl_seconds,
            accounts,
            limiter,
            settings.rate_limits,
        ),
        communities=CommunityService(communities, users, access),
        posts=posts,
        votes=VoteService(live, publisher, settings.vote_archive_days, access),
        listings=ListingService(communities, listings, RankedPostStore(shards), access),
        moderation=ModerationService(access, users, posts, comment_store),
        cql_cluster=cql_cluster,
        comments=CommentService(
            access,
            posts.readable,
            comment_store,
            publisher,
            live,
            settings.vote_archive_days,
            checks,
        ),
        users=UserService(users, karma, comment_store, access, posts),
        notifications=NotificationService(identity_pool, redis),
        idempotency=IdempotencyKeys(redis),
        objects=objects,
        vault=vault,
        mail=mail,
        smtp=SmtpSender(settings),
        accounts=accounts,
        gate=gate,
        media=media,
        limiter=limiter,
        search_index=search_index,
        search=SearchService(search_index, communities),
        notices=notices,
    )
