"""Field checks of payout accounts: Luhn, Alipay, WeChat openid, resident ID (GB 11643)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distnet.payout_accounts import rules


def _with_luhn(body: str) -> str:
    for d in "0123456789":
        if rules.luhn_ok(body + d):
            return body + d
    raise AssertionError


@given(st.text("0123456789", min_size=11, max_size=18))
def test_luhn_accepts_its_own_check_digit_and_refuses_a_changed_digit(body):
    number = _with_luhn(body)
    assert rules.bank_card(number) == number
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    with pytest.raises(rules.FieldInvalid, match="Luhn"):
        rules.bank_card(wrong)


@pytest.mark.parametrize("value", ["4111 1111 1111 1111", "4111-1111-1111-1111", " 4111111111111111 "])
def test_known_card_numbers(value):
    assert rules.bank_card(value) == "4111111111111111"


@pytest.mark.parametrize("value", ["1234", "4111 1111 1111 1112", "41111111111111111111", "abcd12345678"])
def test_bad_card_numbers(value):
    with pytest.raises(rules.FieldInvalid) as exc:
        rules.bank_card(value)
    assert exc.value.field == "account_number"


def test_alipay_accepts_mobile_and_email_only():
    assert rules.alipay_account("+86 138-0013-8000") == "13800138000"
    assert rules.alipay_account("Li.Na@Example.com") == "li.na@example.com"
    for bad in ("12345", "23800138000", "li@", "not an account"):
        with pytest.raises(rules.FieldInvalid):
            rules.alipay_account(bad)


def test_wechat_openid():
    assert rules.wechat_openid("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o") == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    for bad in ("short", "has spaces in it and is long", "o" * 65):
        with pytest.raises(rules.FieldInvalid):
            rules.wechat_openid(bad)


@pytest.mark.parametrize("value", ["11010519491231002X", "110101199003070011", "440524188001010014"])
def test_resident_ids_with_their_check_character(value):
    assert rules.resident_id(value.lower()) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("110105194912310021", "check character"),
        ("11010519491331002X", "birth date"),
        ("1101051949123100", "17 digits"),
        ("11010521491231002X", "birth date"),
    ],
)
def test_bad_resident_ids(value, message):
    with pytest.raises(rules.FieldInvalid, match=message):
        rules.resident_id(value)


def test_masks_show_the_last_four_only():
    assert rules.mask("6222020012345678") == "****5678"
    assert rules.mask_name("张三丰") == "张**"
