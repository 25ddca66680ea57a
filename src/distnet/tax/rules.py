"""Income tax withheld on labour remuneration (劳务报酬 预扣预缴), pure: no I/O.

The rules are data (a ``tax_table`` version's ``rules``) so that a new rate table is a new row,
not a code change. ``withholding`` here and the SQL function ``distnet_withholding_tax``
(migration 0070, used by payout runs) compute the same thing; a property test holds them equal.

China's default: all payments to one person by one payer within one month are one income. The
deduction is 800 for an income of at most 4,000, otherwise 20% of it; the taxable amount pays 20%
up to 20,000, 30% minus a quick deduction of 2,000 up to 50,000, 40% minus 7,000 above. Amounts
in minor units (fen), rounded half up to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHINA_LABOUR_REMUNERATION: dict[str, Any] = {
    "kind": "progressive_after_deduction",
    "deduction": {"threshold": 400_000, "fixed": 80_000, "rate_bps": 2000},
    "brackets": [
        {"up_to": 2_000_000, "rate_bps": 2000, "quick_deduction": 0},
        {"up_to": 5_000_000, "rate_bps": 3000, "quick_deduction": 200_000},
        {"up_to": None, "rate_bps": 4000, "quick_deduction": 700_000},
    ],
}


class InvalidTaxRules(ValueError):
    pass


def _half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, for numerator >= 0."""
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(frozen=True, slots=True)
class Withholding:
    income: int
    deduction: int
    taxable: int
    rate_bps: int
    quick_deduction: int
    tax: int


def compute(income: int, rules: dict[str, Any]) -> Withholding:
    """The tax on one month's income from one payer."""
    income = max(income, 0)
    ded = rules["deduction"]
    deduction = ded["fixed"] if income <= ded["threshold"] else _half_up(income * ded["rate_bps"], 10_000)
    taxable = max(income - deduction, 0)
    for bracket in rules["brackets"]:
        if bracket["up_to"] is None or taxable <= bracket["up_to"]:
            break
    tax = max(_half_up(taxable * bracket["rate_bps"], 10_000) - bracket["quick_deduction"], 0)
    return Withholding(income, deduction, taxable, bracket["rate_bps"], bracket["quick_deduction"], tax)


def withholding(income: int, rules: dict[str, Any]) -> int:
    return compute(income, rules).tax


def additional_withholding(
    month_income_before: int, tax_withheld_before: int, payment: int, rules: dict[str, Any]
) -> int:
    """A later payment in the same month: the tax on the month's total less what was withheld."""
    return max(withholding(month_income_before + payment, rules) - tax_withheld_before, 0)


def validate(rules: Any) -> dict[str, Any]:
    """Check a rules document's shape; raises InvalidTaxRules naming what is wrong."""

    def whole(value: Any, name: str, *, upper: int | None = None) -> int:
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < 0
            or (upper is not None and value > upper)
        ):
            raise InvalidTaxRules(f"{name} must be a whole number from 0" + (f" to {upper}" if upper else ""))
        return value

    if not isinstance(rules, dict) or rules.get("kind") != "progressive_after_deduction":
        raise InvalidTaxRules("kind must be 'progressive_after_deduction'")
    ded = rules.get("deduction")
    if not isinstance(ded, dict):
        raise InvalidTaxRules("deduction is required")
    whole(ded.get("threshold"), "deduction.threshold")
    whole(ded.get("fixed"), "deduction.fixed")
    whole(ded.get("rate_bps"), "deduction.rate_bps", upper=10_000)
    brackets = rules.get("brackets")
    if not isinstance(brackets, list) or not brackets:
        raise InvalidTaxRules("brackets must be a non-empty list")
    last = -1
    for n, b in enumerate(brackets):
        if not isinstance(b, dict):
            raise InvalidTaxRules(f"brackets[{n}] must be an object")
        whole(b.get("rate_bps"), f"brackets[{n}].rate_bps", upper=10_000)
        whole(b.get("quick_deduction"), f"brackets[{n}].quick_deduction")
        up_to = b.get("up_to")
        if up_to is None:
            if n != len(brackets) - 1:
                raise InvalidTaxRules("only the last bracket may be open (up_to null)")
        elif whole(up_to, f"brackets[{n}].up_to") <= last:
            raise InvalidTaxRules("brackets must rise")
        else:
            last = up_to
    if brackets[-1].get("up_to") is not None:
        raise InvalidTaxRules("the last bracket must be open (up_to null)")
    return {
        "kind": rules["kind"],
        "deduction": {k: ded[k] for k in ("threshold", "fixed", "rate_bps")},
        "brackets": [{k: b.get(k) for k in ("up_to", "rate_bps", "quick_deduction")} for b in brackets],
    }
