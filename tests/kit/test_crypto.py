"""The batched Fernet decryption of bank files against the cryptography package's own Fernet."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet, InvalidToken
from hypothesis import given
from hypothesis import strategies as st

from distnet.kit.crypto import _fernet_key, decrypt, decrypt_many, encrypt, encrypt_many

SECRET = b"test-secret"


@given(st.lists(st.one_of(st.none(), st.text(min_size=1).filter(str.strip)), max_size=40))
def test_decrypt_many_equals_fernet_one_by_one(values):
    tokens = [encrypt(SECRET, v) for v in values]
    assert decrypt_many(SECRET, tokens) == [decrypt(SECRET, t) for t in tokens]
    assert decrypt_many(SECRET, tokens) == values


def test_decrypt_many_reads_tokens_of_every_length_and_from_memoryview():
    values = ["x" * n for n in range(1, 70)]  # 1..5 AES blocks, padding 1..16
    tokens = [memoryview(encrypt(SECRET, v)) for v in values]
    assert decrypt_many(SECRET, tokens) == values
    assert decrypt_many(SECRET, []) == []
    # tokens made by a plain Fernet with the same key (as stored by any earlier version)
    fernet = Fernet(base64.urlsafe_b64encode(_fernet_key(SECRET)))
    assert decrypt_many(SECRET, [fernet.encrypt(b"6222 0200 1234")]) == ["6222 0200 1234"]


def _tampered(token: bytes, at: int) -> bytes:
    data = bytearray(base64.urlsafe_b64decode(token))
    data[at] ^= 1
    return base64.urlsafe_b64encode(bytes(data))


@pytest.mark.parametrize("at", [0, 5, 9, 30, -40, -1])  # version, timestamp, IV, ciphertext, HMAC
def test_decrypt_many_refuses_what_fernet_refuses(at):
    good = encrypt(SECRET, "6222 0200 1234 5678 901")
    bad = _tampered(good, at)
    with pytest.raises(InvalidToken):
        decrypt(SECRET, bad)
    with pytest.raises(InvalidToken):
        decrypt_many(SECRET, [good, bad])


@pytest.mark.parametrize(
    "token", [b"", b"not base64!", b"gAAAAA==", base64.urlsafe_b64encode(b"\x80" + bytes(72))]
)
def test_decrypt_many_refuses_malformed_tokens(token):
    with pytest.raises(InvalidToken):
        decrypt_many(SECRET, [token])


def test_decrypt_many_refuses_another_key():
    with pytest.raises(InvalidToken):
        decrypt_many(b"another-secret", [encrypt(SECRET, "6222")])


@pytest.mark.parametrize("last_block", [bytes(16), bytes(15) + b"\x11", b"a" * 14 + b"\x01\x02"])
def test_decrypt_many_refuses_bad_padding_under_a_valid_hmac(last_block):
    import hashlib
    import hmac

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = _fernet_key(SECRET)
    iv = bytes(range(16))
    encryptor = Cipher(algorithms.AES(key[16:]), modes.CBC(iv)).encryptor()
    body = b"\x80" + bytes(8) + iv + encryptor.update(b"b" * 16 + last_block) + encryptor.finalize()
    token = base64.urlsafe_b64encode(body + hmac.digest(key[:16], body, hashlib.sha256))
    with pytest.raises(InvalidToken):
        decrypt(SECRET, token)
    with pytest.raises(InvalidToken):
        decrypt_many(SECRET, [token])


@given(st.lists(st.one_of(st.none(), st.text(max_size=60)), max_size=40))
def test_encrypt_many_makes_fernet_tokens(values):
    tokens = encrypt_many(SECRET, values)
    fernet = Fernet(base64.urlsafe_b64encode(_fernet_key(SECRET)))
    for value, token in zip(values, tokens, strict=True):
        if value is None or not value.strip():
            assert token is None
        else:
            assert fernet.decrypt(token).decode() == value
    assert decrypt_many(SECRET, tokens) == [
        None if t is None else v for v, t in zip(values, tokens, strict=True)
    ]


def test_encrypt_many_never_repeats_an_iv():
    tokens = encrypt_many(SECRET, ["same"] * 50) + encrypt_many(SECRET, ["same"] * 50)
    ivs = {base64.urlsafe_b64decode(t)[9:25] for t in tokens}
    assert len(ivs) == 100 and len(set(tokens)) == 100
