"""Referral codes and card numbers: short, random, unambiguous."""

from __future__ import annotations

import secrets

# no 0/O, 1/I/L, no U (avoids accidental words): read aloud and typed without mistakes
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8


def new_referral_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def luhn_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return str((10 - total % 10) % 10)


def new_card_number() -> str:
    """16 digits, prefix 62 (a UnionPay-like range), Luhn check digit: typos are caught at once."""
    body = "62" + "".join(secrets.choice("0123456789") for _ in range(13))
    return body + luhn_digit(body)


def valid_card_number(number: str) -> bool:
    return len(number) == 16 and number.isdigit() and luhn_digit(number[:-1]) == number[-1]
