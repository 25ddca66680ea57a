"""Personal data: encrypted at rest (Fernet) and looked up by keyed hash (HMAC-SHA256).

Risk rules match equal fingerprints by comparing keyed hashes, never by reading the values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet


@lru_cache(maxsize=4)
def _fernet(secret: bytes) -> Fernet:
    key = hashlib.sha256(b"distnet-pii-encryption:" + secret).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _hash_key(secret: bytes) -> bytes:
    return hashlib.sha256(b"distnet-pii-hash:" + secret).digest()


def normalize(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "phone":
        return "".join(ch for ch in value if ch.isdigit() or ch == "+")
    return value.lower()


def keyed_hash(secret: bytes, kind: str, value: str | None) -> bytes | None:
    """Equal values of one kind hash equal; kinds never collide (a phone is not an IP)."""
    if value is None or not value.strip():
        return None
    msg = f"{kind}:{normalize(kind, value)}".encode()
    return hmac.new(_hash_key(secret), msg, hashlib.sha256).digest()[:16]


def encrypt(secret: bytes, value: str | None) -> bytes | None:
    if value is None or not value.strip():
        return None
    return _fernet(secret).encrypt(value.encode())


def decrypt(secret: bytes, token: bytes | None) -> str | None:
    if token is None:
        return None
    return _fernet(secret).decrypt(bytes(token)).decode()
