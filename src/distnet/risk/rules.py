"""Risk rules: defaults and parameter schemas live here, in code; the ``risk_rule`` table holds the
current configuration (created lazily from these defaults) and ``risk_rule_version`` its history.

A parameter is ``Param(kind, default, lo, hi)``; ``kind`` is ``int``, ``float`` or ``money`` (a
``"12.34"`` string, stored as given and read as minor units). Every rule also takes
``max_holds_per_hour``: the circuit breaker of its automatic holds (the rest become review cases).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit import audit
from distnet.kit.auth import Principal
from distnet.kit.errors import ValidationFailed
from distnet.kit.money import parse_amount
from distnet.models import RiskRule, RiskRuleVersion
from distnet.risk.errors import InvalidRuleParams, RuleNotFound
from distnet.risk.schemas import ParamSpec, RulePrecision, RuleView, RuleWithPrecision


class Mode(StrEnum):
    off = "off"
    shadow = "shadow"
    review = "review"
    enforce = "enforce"


@dataclass(frozen=True, slots=True)
class Param:
    kind: str
    default: Any
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True, slots=True)
class RuleSpec:
    name: str
    reason: str
    mode: Mode
    params: dict[str, Param]
    description: str


BREAKER = Param("int", 20, 0, 100_000)
PRUNE = Param("int", 50, 2, 1_000_000)
"""Identifiers (device, phone, payment, IP) shared by more distributors than this are ignored."""


def _spec(name: str, reason: str, description: str, mode: Mode = Mode.review, **params: Param) -> RuleSpec:
    return RuleSpec(name, reason, mode, {**params, "max_holds_per_hour": BREAKER}, description)


RULES: dict[str, RuleSpec] = {
    s.name: s
    for s in (
        _spec(
            "self_referral",
            "fake_promotion",
            "a recruit shares a device, phone or payment fingerprint with a distributor within N levels above it",
            levels=Param("int", 3, 1, 50),
            max_shared=PRUNE,
        ),
        _spec(
            "identity_cluster",
            "fake_promotion",
            "a group of distributors linked by shared device / phone / payment fingerprints reaches a size",
            min_size=Param("int", 3, 2, 100_000),
            max_shared=PRUNE,
        ),
        _spec(
            "recruit_burst",
            "fake_promotion",
            "a sponsor gains many recruits in a short time, most with no sales",
            min_recruits=Param("int", 20, 2, 1_000_000),
            window_minutes=Param("int", 60, 1, 525_600),
            max_active_share=Param("float", 0.2, 0, 1),
        ),
        _spec(
            "order_velocity",
            "order_brushing",
            "a card places too many orders in a window",
            max_orders=Param("int", 50, 1, 10_000_000),
            window_minutes=Param("int", 60, 1, 525_600),
            lookback_days=Param("int", 7, 1, 3650),
        ),
        _spec(
            "repeat_buyer",
            "order_brushing",
            "one buyer fingerprint on many orders of one card",
            min_orders=Param("int", 5, 2, 10_000_000),
            days=Param("int", 7, 1, 3650),
            max_shared=PRUNE,
        ),
        _spec(
            "self_purchase",
            "order_brushing",
            "the buyer fingerprint is the seller's own or an upline's",
            levels=Param("int", 3, 0, 3),
            lookback_days=Param("int", 30, 1, 3650),
            max_shared=PRUNE,
        ),
        _spec(
            "circular_orders",
            "order_brushing",
            "distributors buy from each other in a cycle",
            max_cycle=Param("int", 4, 2, 10),
            min_amount=Param("money", "0.00", 0, None),
            lookback_days=Param("int", 30, 1, 3650),
            max_shared=PRUNE,
        ),
        _spec(
            "refund_ratio",
            "order_brushing",
            "a card's refunded share of sales is high",
            min_orders=Param("int", 10, 1, 10_000_000),
            ratio=Param("float", 0.5, 0, 1),
            days=Param("int", 30, 1, 3650),
        ),
        _spec(
            "buyer_concentration",
            "order_brushing",
            "in some interval of window_minutes a card's orders / unique buyers reaches min_ratio (Shopee)",
            window_minutes=Param("int", 60, 1, 525_600),
            min_ratio=Param("float", 3.0, 1, 1_000_000),
            lookback_days=Param("int", 7, 1, 3650),
        ),
        _spec(
            "unpaid_balance",
            "unpaid_balance",
            "money owed at or above min_owed for grace_days; the hold lifts itself when the debt is repaid",
            mode=Mode.enforce,
            min_owed=Param("money", "50.00", 0.01, None),
            grace_days=Param("int", 7, 0, 3650),
        ),
    )
}


@dataclass(frozen=True, slots=True)
class RuleConfig:
    name: str
    reason: str
    mode: Mode
    version: int
    params: dict[str, Any]
    """Validated, with defaults filled in; ``money`` params stay ``"12.34"`` strings."""

    def money(self, key: str) -> int:
        return parse_amount(self.params[key], field=key, allow_zero=True)


def defaults(name: str) -> dict[str, Any]:
    return {k: p.default for k, p in RULES[name].params.items()}


def validate_params(name: str, params: Any, *, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``params`` over ``base`` (the current params) and check every value; 422 listing each
    unknown or bad parameter."""
    spec = RULES[name]
    if not isinstance(params, dict):
        raise InvalidRuleParams("params must be an object", field="params")
    merged = dict(base if base is not None else defaults(name))
    errors: list[dict[str, str]] = []
    for key, value in params.items():
        param = spec.params.get(key)
        if param is None:
            errors.append({"field": f"params.{key}", "message": f"unknown parameter of {name}"})
            continue
        try:
            merged[key] = _check(param, value, key)
        except ValueError as exc:
            errors.append({"field": f"params.{key}", "message": str(exc)})
    if errors:
        raise InvalidRuleParams("; ".join(e["message"] + f" ({e['field']})" for e in errors), errors=errors)
    return merged


def _check(param: Param, value: Any, key: str) -> Any:
    if param.kind == "money":
        if not isinstance(value, str):
            raise ValueError('must be a decimal string like "12.34"')
        try:
            minor = parse_amount(value, field=key, allow_zero=True)
        except ValidationFailed as exc:
            raise ValueError(exc.message) from exc
        number: float = minor / 100
        out: Any = f"{minor // 100}.{minor % 100:02d}"
    elif param.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        number = out = value
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ValueError("must be a number")
        number = out = float(value)
    if param.lo is not None and number < param.lo:
        raise ValueError(f"must be at least {param.lo:g}")
    if param.hi is not None and number > param.hi:
        raise ValueError(f"must be at most {param.hi:g}")
    return out


async def _ensure_rows(session: AsyncSession) -> None:
    """Create missing rule rows (and their version 1) from the defaults; idempotent and race-free."""
    await session.execute(
        pg_insert(RiskRule)
        .values(
            [
                {
                    "name": s.name,
                    "reason": s.reason,
                    "mode": s.mode.value,
                    "params": defaults(s.name),
                    "version": 1,
                    "updated_by": "defaults",
                }
                for s in RULES.values()
            ]
        )
        .on_conflict_do_nothing()
    )
    await session.execute(
        pg_insert(RiskRuleVersion)
        .values(
            [
                {
                    "name": s.name,
                    "version": 1,
                    "mode": s.mode.value,
                    "params": defaults(s.name),
                    "created_by": "defaults",
                }
                for s in RULES.values()
            ]
        )
        .on_conflict_do_nothing()
    )


def _config(row: RiskRule) -> RuleConfig:
    # fill parameters added to the code after the row was written
    params = {**defaults(row.name), **{k: v for k, v in row.params.items() if k in RULES[row.name].params}}
    return RuleConfig(row.name, RULES[row.name].reason, Mode(row.mode), row.version, params)


async def load_rules(session: AsyncSession) -> dict[str, RuleConfig]:
    rows = {r.name: r for r in await session.scalars(select(RiskRule))}
    if any(name not in rows for name in RULES):
        await _ensure_rows(session)
        rows = {r.name: r for r in await session.scalars(select(RiskRule))}
    return {name: _config(rows[name]) for name in RULES}


async def load_rule(session: AsyncSession, name: str) -> RuleConfig:
    if name not in RULES:
        raise RuleNotFound(f"no risk rule {name!r}")
    return (await load_rules(session))[name]


def _bound(value: float | None) -> float | None:
    return None if value is None else float(value)


def _rule_fields(cfg: RuleConfig) -> dict[str, Any]:
    spec = RULES[cfg.name]
    return dict(
        name=cfg.name,
        reason=cfg.reason,
        mode=cfg.mode.value,
        version=cfg.version,
        params=cfg.params,
        description=spec.description,
        param_schema={
            k: ParamSpec(type=p.kind, default=p.default, min=_bound(p.lo), max=_bound(p.hi))
            for k, p in spec.params.items()
        },
    )


def rule_view(cfg: RuleConfig) -> RuleView:
    return RuleView(**_rule_fields(cfg))


def rule_with_precision(cfg: RuleConfig, precision: list[RulePrecision]) -> RuleWithPrecision:
    return RuleWithPrecision(**_rule_fields(cfg), precision=precision)


async def update_rule(
    session: AsyncSession, principal: Principal, name: str, *, mode: str | None, params: dict[str, Any] | None
) -> RuleConfig:
    """Change a rule's mode and/or params: a new version, recorded in history and the audit log."""
    if name not in RULES:
        raise RuleNotFound(f"no risk rule {name!r}")
    await load_rules(session)
    row = await session.scalar(select(RiskRule).where(RiskRule.name == name).with_for_update())
    assert row is not None
    before = _config(row)
    new_mode = before.mode
    if mode is not None:
        try:
            new_mode = Mode(mode)
        except ValueError as exc:
            raise ValidationFailed(
                f"mode must be one of {', '.join(m.value for m in Mode)}", field="mode"
            ) from exc
    new_params = validate_params(name, params, base=before.params) if params is not None else before.params
    if new_mode == before.mode and new_params == before.params:
        return before
    row.mode, row.params, row.version, row.updated_by = (
        new_mode.value,
        new_params,
        row.version + 1,
        principal.actor,
    )
    row.updated_at = datetime.now(UTC)
    session.add(
        RiskRuleVersion(
            name=name, version=row.version, mode=new_mode.value, params=new_params, created_by=principal.actor
        )
    )
    await session.flush()
    after = _config(row)
    await audit.record(
        session,
        principal,
        "risk_rule.updated",
        "risk_rule",
        name,
        before={"mode": before.mode.value, "params": before.params, "version": before.version},
        after={"mode": after.mode.value, "params": after.params, "version": after.version},
    )
    return after
