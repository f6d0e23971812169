"""The object store (MinIO through boto3) and the SMTP relay (Mailpit) of the stack."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from botocore.exceptions import ClientError

from api.mailer import SmtpSender, run_sender
from stores.mail_queue import QUEUE, SENDING, Mail, MailQueue
from stores.objects import ObjectStore, client, ensure_bucket
from stores.pii import EmailVault
from stores.redis_store import async_client
from tests.mailbox import wait_for_mail


@pytest.fixture(scope="module")
def objects(settings):
    ensure_bucket(settings)
    store = ObjectStore(settings)
    yield store
    store.close()


def test_public_keys_are_readable_without_credentials_and_others_are_not(objects, settings):
    name = uuid.uuid4().hex
    objects.put_bytes(f"thumbs/{name}.jpg", b"thumbnail bytes", "image/jpeg")
    objects.put_bytes(f"incoming/{name}", b"private bytes", "application/octet-stream")
    public = httpx.get(objects.url(f"thumbs/{name}.jpg"), timeout=5)
    assert public.status_code == 200
    assert public.content == b"thumbnail bytes"
    assert public.headers["content-type"] == "image/jpeg"
    private = httpx.get(objects.url(f"incoming/{name}"), timeout=5)
    assert private.status_code == 403
    s3 = client(settings)
    got = s3.get_object(Bucket=settings.s3_bucket, Key=f"incoming/{name}")
    assert got["Body"].read() == b"private bytes"
    assert objects.exists(f"thumbs/{name}.jpg")
    objects.delete(f"thumbs/{name}.jpg")
    assert not objects.exists(f"thumbs/{name}.jpg")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=settings.s3_bucket, Key=f"thumbs/{name}.jpg")


def test_ensure_bucket_is_idempotent(settings):
    assert ensure_bucket(settings) is False


async def test_queued_mail_is_sealed_in_redis_and_delivered_by_smtp(settings):
    vault = EmailVault(settings.email_encryption_key, settings.email_hash_key)
    redis = async_client(settings.redis_url)
    await redis.delete(QUEUE, SENDING)
    queue = MailQueue(redis, vault)
    address = f"{uuid.uuid4().hex[:12]}@example.test"
    await queue.push(Mail(address, "Your code", "Code: 123456"))
    sealed = await redis.lrange(QUEUE, 0, -1)  # type: ignore[misc]
    assert len(sealed) == 1
    assert address.encode() not in sealed[0] and b"123456" not in sealed[0]
    stop = asyncio.Event()
    sender = asyncio.create_task(run_sender(queue, SmtpSender(settings), stop))
    try:
        texts = await asyncio.to_thread(wait_for_mail, address)
    finally:
        stop.set()
        await sender
    assert "Code: 123456" in texts[0]
    assert await redis.llen(QUEUE) == 0  # type: ignore[misc]
    assert await redis.llen(SENDING) == 0  # type: ignore[misc]
    await redis.aclose()


def test_smtp_ping(settings):
    SmtpSender(settings).ping()
