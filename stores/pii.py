"""Personal data at rest: emails are stored encrypted (AES-256-GCM, a random 96-bit
nonce per value, the user id as associated data so a ciphertext cannot be moved to
another row) and found by a keyed hash (HMAC-SHA256 of the normalised address), so
no table, log or event holds an address in clear. Both keys come from the
environment (`EMAIL_ENCRYPTION_KEY`, `EMAIL_HASH_KEY`: 32 bytes as hex)."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _key(name: str, value: str) -> bytes:
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{name} must be hex") from None
    if len(key) != 32:
        raise ValueError(f"{name} must be 32 bytes (64 hex characters)")
    return key


class EmailVault:
    def __init__(self, encryption_key: str, hash_key: str) -> None:
        self._aead = AESGCM(_key("EMAIL_ENCRYPTION_KEY", encryption_key))
        self._hash_key = _key("EMAIL_HASH_KEY", hash_key)

    def lookup_hash(self, email: str) -> str:
        return hmac.new(self._hash_key, normalise_email(email).encode(), hashlib.sha256).hexdigest()

    def encrypt(self, user_id: str, email: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, email.strip().encode(), user_id.encode())

    def decrypt(self, user_id: str, sealed: bytes) -> str:
        nonce, body = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        return self._aead.decrypt(nonce, body, user_id.encode()).decode()

    def seal(self, context: str, data: bytes) -> bytes:
        """Any other short-lived personal data (queued mail) under the same key."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, context.encode())

    def open(self, context: str, sealed: bytes) -> bytes:
        return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode())

    def code_digest(self, purpose: str, user_id: str, code: str) -> str:
        """One-time codes are kept as keyed digests, never in clear."""
        message = f"{purpose}:{user_id}:{code}".encode()
        return hmac.new(self._hash_key, message, hashlib.sha256).hexdigest()
