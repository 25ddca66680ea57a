"""Evidence in words for reviewers: the rule's findings as (label, text) rows with people by code
and name, times to the minute, counts instead of lists; never a hash or raw JSON. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

PERSON_KEYS = ("recruit", "ancestor", "sponsor", "seller", "buyer_distributor")
PEOPLE_KEYS = ("recruits", "cycle")
HIDDEN = ("graph", "rule", "rule_version", "risk_case_id")
HEXISH = re.compile(r"^[0-9a-f]{12,}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")

LABELS = {
    "recruit": "Recruit",
    "ancestor": "Upline (sponsor side)",
    "level": "Levels apart",
    "sponsor": "Sponsor",
    "recruits": "Recruits in the window",
    "shared_identifiers": "Shared identifiers",
    "size": "Distributors in the cluster",
    "window_start": "Window from",
    "window_end": "Window to",
    "recruits_in_window": "Recruits in the window",
    "recruits_with_sales": "Recruits with sales",
    "active_share": "Share with sales",
    "orders_in_window": "Orders in the window",
    "max_orders": "Allowed at most",
    "fingerprint": "Buyer fingerprint",
    "orders": "Orders",
    "days": "Days looked back",
    "cards_with_this_fingerprint": "Cards this buyer bought from",
    "seller": "Seller",
    "buyer_distributor": "Buyer (a distributor)",
    "buyer_level": "Buyer's upline level (0 = self)",
    "relation": "Relation",
    "matched_by": "Matched by",
    "cycle": "Buying cycle",
    "sales": "Sales",
    "refunded": "Refunded",
    "ratio": "Ratio",
    "suspicious_buyers": "Suspicious buyers",
    "max_ratio": "Highest orders per buyer",
    "intervals": "Brushing intervals",
    "owed": "Owed",
    "owed_since": "Owed since",
    "grace_days": "Grace days",
    "min_owed": "Least debt that counts",
    "order_ids": "Orders counted",
    "note": "Note",
}


def distributor_ids_in(evidence: dict[str, Any] | None) -> set[int]:
    ids: set[int] = set()
    for key in PERSON_KEYS:
        if isinstance((evidence or {}).get(key), int):
            ids.add(evidence[key])  # type: ignore[index]
    for key in PEOPLE_KEYS:
        ids.update(i for i in (evidence or {}).get(key, []) or [] if isinstance(i, int))
    return ids


def _kind(kind: Any) -> str:
    return str(kind).replace("_", " ")


def evidence_rows(
    evidence: dict[str, Any] | None, *, name: Callable[[int], str] = str, when: Callable[[str], str] = str
) -> list[tuple[str, str]]:
    rows = []
    for key, value in (evidence or {}).items():
        if key in HIDDEN or value is None or value == [] or value == {}:
            continue
        rows.append((LABELS.get(key, key.replace("_", " ").capitalize()), _text(key, value, name, when)))
    return rows


def _text(key: str, value: Any, name: Callable[[int], str], when: Callable[[str], str]) -> str:
    if key in PERSON_KEYS and isinstance(value, int):
        return name(value)
    if key == "cycle" and isinstance(value, list):
        return " → ".join(name(i) for i in [*value, value[0]])
    if key in PEOPLE_KEYS and isinstance(value, list):
        shown = ", ".join(name(i) for i in value[:12])
        return shown + (f" and {len(value) - 12} more" if len(value) > 12 else "")
    if key == "shared_identifiers" and isinstance(value, list):
        kinds = sorted({_kind(v.get("kind")) for v in value if isinstance(v, dict)})
        return f"{len(value)} shared ({', '.join(kinds)})"
    if key == "fingerprint" and isinstance(value, dict):
        return f"the same {_kind(value.get('kind'))} on every order"
    if key == "suspicious_buyers" and isinstance(value, list):
        return f"{len(value)} buyer(s)"
    if key == "order_ids" and isinstance(value, list):
        return f"{len(value)} order(s), listed below"
    if key == "intervals" and isinstance(value, list):
        parts = [
            f"{when(a)} – {when(b)}" for a, b in (v for v in value[:5] if isinstance(v, list) and len(v) == 2)
        ]
        return "; ".join(parts) + (f" and {len(value) - 5} more" if len(value) > 5 else "")
    if key == "matched_by" and isinstance(value, list):
        return ", ".join(_kind(v) for v in value)
    return _scalar(value, when)


def _scalar(value: Any, when: Callable[[str], str]) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, str):
        if ISO.match(value):
            return when(value)
        if HEXISH.match(value):
            return "(a fingerprint)"
        return value.replace("_", " ") if re.fullmatch(r"[a-z_0-9]+", value) else value
    if isinstance(value, list):
        return f"{len(value)} item(s)"
    if isinstance(value, dict):
        return ", ".join(
            f"{k.replace('_', ' ')}: {_scalar(v, when)}"
            for k, v in value.items()
            if isinstance(v, (str, int, float, bool))
        )
    return str(value)


def names(who: dict[int, Any]) -> Callable[[int], str]:
    def name(i: int) -> str:
        w = who.get(i)
        return f"{w.name} ({w.code})" if w is not None else "a closed account"

    return name


def unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))
