"""Money: integer minor units inside, ``"12.34"`` strings at the edges."""

from __future__ import annotations

import re

from distnet.kit.errors import ValidationFailed

CURRENCIES = frozenset({"CNY", "USD", "EUR", "HKD", "SGD", "JPY", "GBP"})
MAX_AMOUNT_MINOR = 10**13  # 100 billion in major units: anything above is a typo or an attack
_AMOUNT = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,2})?")  # ASCII digits only (\d takes any script's)


def parse_amount(value: str | int | float | None, *, field: str = "amount", allow_zero: bool = False) -> int:
    """Parse a decimal money string into minor units; refuse more than two decimals."""
    if value is None:
        raise ValidationFailed("amount is required", field=field)
    if isinstance(value, bool):
        raise ValidationFailed('amount must be a decimal string like "12.34"', field=field)
    text = str(value).strip()
    if not _AMOUNT.fullmatch(text):
        raise ValidationFailed('amount must be a decimal with at most two places, e.g. "12.34"', field=field)
    # the pattern admits only digits, one optional point and a leading minus: integer arithmetic
    # suffices (a Decimal per amount was a tenth of a 1,000-order batch's validation)
    whole, _, cents = text.lstrip("-").partition(".")
    minor = int(whole) * 100 + int(cents.ljust(2, "0"))
    if text.startswith("-"):
        minor = -minor
    if minor < 0 or (minor == 0 and not allow_zero):
        raise ValidationFailed("amount must be positive", field=field)
    if minor > MAX_AMOUNT_MINOR:
        raise ValidationFailed("amount is too large", field=field)
    return minor


def format_amount(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    return f"{sign}{minor // 100}.{minor % 100:02d}"


def check_currency(value: str | None, default: str, *, field: str = "currency") -> str:
    currency = (value or default).upper()
    if currency not in CURRENCIES:
        raise ValidationFailed(f"unknown currency {value!r}", field=field)
    return currency
