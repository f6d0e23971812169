"""The object store (S3 API through boto3; MinIO locally, AWS S3 or any S3-compatible
server in production): the media bucket, its public-read policy and its object keys.

Uploads and thumbnails are served from a public-read bucket behind a configurable
base URL (`S3_PUBLIC_URL`, a CDN in production): listings carry plain, cacheable URLs
that never expire, and nothing is signed per request. Only the keys under `media/`
and `thumbs/` are public; they hold images whose metadata was already stripped.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import IO

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from stores.settings import Settings, get_settings

PUBLIC_PREFIXES = ("media/", "thumbs/")


def original_key(media_id: str, extension: str) -> str:
    return f"media/{media_id}.{extension}"


def thumbnail_key(media_id: str) -> str:
    return f"thumbs/{media_id}.jpg"


def public_base(settings: Settings) -> str:
    return (settings.s3_public_url or f"{settings.s3_endpoint or ''}/{settings.s3_bucket}").rstrip(
        "/"
    )


@lru_cache(maxsize=1)
def _base() -> str:
    return public_base(get_settings())


def media_url(key: str | None) -> str | None:
    """The public URL of a stored object (None for no key), from the settings."""
    return f"{_base()}/{key}" if key else None


def client(settings: Settings) -> BaseClient:
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=3,
            read_timeout=30,
            max_pool_connections=20,
        ),
    )


def public_read_policy(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ["*"]},
                    "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{bucket}/{p}*" for p in PUBLIC_PREFIXES],
                }
            ],
        }
    )


def ensure_bucket(settings: Settings) -> bool:
    """Create the media bucket and its public-read policy when missing; True if created."""
    s3 = client(settings)
    created = False
    try:
        s3.head_bucket(Bucket=settings.s3_bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        s3.create_bucket(Bucket=settings.s3_bucket)
        created = True
    s3.put_bucket_policy(Bucket=settings.s3_bucket, Policy=public_read_policy(settings.s3_bucket))
    s3.close()
    return created


class ObjectStore:
    """Media objects. Blocking (boto3): async callers run it in a thread."""

    def __init__(self, settings: Settings, s3: BaseClient | None = None) -> None:
        self.bucket = settings.s3_bucket
        self.base_url = public_base(settings)
        self.s3 = s3 or client(settings)

    def url(self, key: str) -> str:
        return f"{self.base_url}/{key}"

    def put_file(self, key: str, body: IO[bytes], content_type: str) -> None:
        """Streams `body` (multipart for large ones): never reads it whole into memory."""
        self.s3.upload_fileobj(
            body,
            self.bucket,
            key,
            ExtraArgs={"ContentType": content_type, "CacheControl": "public, max-age=31536000"},
        )

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            CacheControl="public, max-age=31536000",
        )

    def download(self, key: str, into: IO[bytes]) -> None:
        self.s3.download_fileobj(self.bucket, key, into)

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def ping(self) -> None:
        self.s3.head_bucket(Bucket=self.bucket)

    def close(self) -> None:
        self.s3.close()
