"""Checks of payout account fields, pure: bank card numbers (Luhn), Alipay accounts, WeChat
openids and resident ID numbers (GB 11643-1999 check character). Each returns the normalised value
or raises ``FieldInvalid`` naming the field."""

from __future__ import annotations

import re
from datetime import date


class FieldInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def bank_card(value: str, field: str = "account_number") -> str:
    digits = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"\d{12,19}", digits, re.ASCII):
        raise FieldInvalid(field, "a bank card number has 12 to 19 digits")
    if not luhn_ok(digits):
        raise FieldInvalid(field, "the bank card number fails its check digit (Luhn)")
    return digits


_MOBILE = re.compile(r"(?:\+?86)?(1[3-9]\d{9})", re.ASCII)
_EMAIL = re.compile(
    r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}", re.ASCII
)


def alipay_account(value: str, field: str = "account_number") -> str:
    compact = re.sub(r"[\s-]", "", value)
    if m := _MOBILE.fullmatch(compact):
        return m.group(1)
    if _EMAIL.fullmatch(value.strip()):
        return value.strip().lower()
    raise FieldInvalid(field, "an Alipay account is a mainland mobile number or an e-mail address")


# an openid is issued per app: base64url-like, 28 characters for official accounts and mini programs
_OPENID = re.compile(r"[A-Za-z0-9_-]{20,64}")


def wechat_openid(value: str, field: str = "account_number") -> str:
    if not _OPENID.fullmatch(value.strip()):
        raise FieldInvalid(
            field, "a WeChat payee is the openid bound to the platform's app (20-64 of A-Z a-z 0-9 _ -)"
        )
    return value.strip()


_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def resident_id_check_char(first17: str) -> str:
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def resident_id(value: str, field: str = "resident_id") -> str:
    """An 18-character citizen ID number: 6-digit area, birth date, 3-digit sequence, check char."""
    v = value.strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", v, re.ASCII):
        raise FieldInvalid(field, "a resident ID number has 17 digits and a check digit or X")
    try:
        born = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise FieldInvalid(field, "the resident ID number's birth date is not a date") from None
    if born.year < 1800 or born > date.today():
        raise FieldInvalid(field, "the resident ID number's birth date is out of range")
    if resident_id_check_char(v[:17]) != v[17]:
        raise FieldInvalid(field, "the resident ID number fails its check character (GB 11643)")
    return v


def account_number(method: str, value: str) -> str:
    check = {"bank_card": bank_card, "alipay": alipay_account, "wechat": wechat_openid}.get(method)
    if check is None:
        raise FieldInvalid("method", "method must be bank_card, alipay or wechat")
    return check(value)


def last4(value: str) -> str:
    return value[-4:]


def mask(value: str | None) -> str | None:
    """What responses show of an account or ID number: its last four characters."""
    return None if not value else "****" + value[-4:]


def mask_name(name: str | None) -> str | None:
    if not name:
        return None
    return name[0] + "*" * max(len(name) - 1, 1)
