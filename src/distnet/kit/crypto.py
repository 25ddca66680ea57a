"""Personal data: encrypted at rest (Fernet) and looked up by keyed hash (HMAC-SHA256).

Risk rules match equal fingerprints by comparing keyed hashes, never by reading the values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def _fernet_key(secret: bytes) -> bytes:
    return hashlib.sha256(b"distnet-pii-encryption:" + secret).digest()


@lru_cache(maxsize=4)
def _fernet(secret: bytes) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_fernet_key(secret)))


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


# Fernet token: version 0x80 | timestamp (8) | IV (16) | AES-128-CBC ciphertext (n x 16) | HMAC-SHA256 (32)
_FERNET_OVERHEAD = 1 + 8 + 16 + 32


def decrypt_many(secret: bytes, tokens: Sequence[bytes | None]) -> list[str | None]:
    """``[decrypt(secret, t) for t in tokens]`` for a bank file's worth of tokens, twice as fast (98k
    tokens: 0.38 s instead of 0.78 s).

    The same Fernet tokens and checks (version byte, HMAC-SHA256 over everything before it,
    verified before anything is decrypted; PKCS7 padding; ``InvalidToken`` otherwise), but the
    HMACs are one-shot ``hmac.digest`` calls and the AES-CBC decryption is one pass over the whole
    batch: the batch is laid out as IV1 C1 IV2 C2 ..., and since CBC decrypts each block with the
    block before it, every token's ciphertext is decrypted with its own IV. Only the blocks decrypted
    from the IVs themselves are garbage, and they are dropped. ``decrypt`` (the cryptography package's
    own Fernet) stays the reference: tests/kit/test_crypto.py checks one against the other."""
    key = _fernet_key(secret)
    signing_key, encryption_key = key[:16], key[16:]
    spans: list[int | None] = []
    chained: list[bytes] = []
    for token in tokens:
        if token is None:
            spans.append(None)
            continue
        try:
            data = base64.urlsafe_b64decode(bytes(token))
        except (TypeError, binascii.Error):
            raise InvalidToken from None
        body = len(data) - _FERNET_OVERHEAD
        if body < 16 or body % 16 or data[0] != 0x80:
            raise InvalidToken
        view = memoryview(data)
        if not hmac.compare_digest(hmac.digest(signing_key, view[:-32], "sha256"), view[-32:]):
            raise InvalidToken
        chained.append(view[9:-32])  # IV and ciphertext
        spans.append(16 + body)
    decryptor = Cipher(algorithms.AES(encryption_key), modes.CBC(bytes(16))).decryptor()
    plain = memoryview(decryptor.update(b"".join(chained)) + decryptor.finalize())
    out: list[str | None] = []
    at = 0
    for span in spans:
        if span is None:
            out.append(None)
            continue
        padded = plain[at + 16 : at + span]  # the first block is the IV's, garbage
        at += span
        pad = padded[-1]
        if not 1 <= pad <= 16 or padded[-pad:] != bytes((pad,)) * pad:
            raise InvalidToken
        out.append(bytes(padded[:-pad]).decode())
    return out


def encrypt_many(secret: bytes, values: Sequence[str | None]) -> list[bytes | None]:
    """``[encrypt(secret, v) for v in values]`` for the order ingest paths (a batch of 1,000, an
    import's buyer references): standard Fernet tokens, which ``decrypt`` and the cryptography
    package's own Fernet read, made in one AES-CBC pass instead of one Fernet call each.

    The values are padded and laid end to end and encrypted as one CBC message under one random
    IV, so each token's IV is the ciphertext block just before its own: exactly the value CBC
    would have chained in anyway. Every plaintext is fixed before any IV exists, so no IV is
    predictable to whoever chose a plaintext (the condition CBC needs); each token then gets its
    own HMAC-SHA256 as Fernet requires. Blank values stay None, like ``encrypt``."""
    key = _fernet_key(secret)
    signing_key, encryption_key = key[:16], key[16:]
    iv = os.urandom(16)
    stamp = b"\x80" + int(time.time()).to_bytes(8, "big")
    padded: list[bytes | None] = []
    for value in values:
        if value is None or not value.strip():
            padded.append(None)
            continue
        data = value.encode()
        pad = 16 - len(data) % 16
        padded.append(data + bytes((pad,)) * pad)
    encryptor = Cipher(algorithms.AES(encryption_key), modes.CBC(iv)).encryptor()
    cipher = encryptor.update(b"".join(p for p in padded if p is not None)) + encryptor.finalize()
    out: list[bytes | None] = []
    at = 0
    previous = iv
    digest, b64, urlsafe = hmac.digest, binascii.b2a_base64, _URLSAFE
    for p in padded:
        if p is None:
            out.append(None)
            continue
        end = at + len(p)
        signed = stamp + previous + cipher[at:end]
        out.append(b64(signed + digest(signing_key, signed, "sha256"), newline=False).translate(urlsafe))
        previous = cipher[end - 16 : end]
        at = end
    return out


_URLSAFE = bytes.maketrans(b"+/", b"-_")
