"""Risk test helpers: distributors through the real registration service, orders and commissions by
direct SQL (the orders engineer's POST /orders is built in parallel), money through the ledger."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.auth import SYSTEM
from distnet.kit.crypto import keyed_hash
from distnet.ledger.service import Posting, apply_deferred_balances, ensure_accounts, post
from distnet.network import service as network
from distnet.network.schemas import DistributorCreate
from distnet.risk import rules as rules_mod
from distnet.settings import Settings

_seq = itertools.count(1)


@dataclass
class D:
    id: int
    code: str
    card: str
    card_id: int
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


class Net:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self.secret = settings.secret_key

    def h(self, kind: str, value: str | None) -> bytes | None:
        return keyed_hash(self.secret, kind, value)

    async def add(self, sponsor: D | None = None, *, joined_at: datetime | None = None, **pii: Any) -> D:
        data = DistributorCreate(name=f"d{next(_seq)}", sponsor_code=sponsor.code if sponsor else None, **pii)
        view = await network.register(self.session, settings=self.settings, principal=SYSTEM, data=data)
        card_id = await self.session.scalar(
            text("SELECT id FROM card WHERE number = :n"), {"n": view.card.number}
        )
        if joined_at is not None:
            await self.session.execute(
                text("UPDATE distributor SET joined_at = :t WHERE id = :i"), {"t": joined_at, "i": view.id}
            )
        return D(view.id, view.code, view.card.number, card_id, view.api_key)

    async def chain(self, n: int, **pii: Any) -> list[D]:
        out = [await self.add(**pii)]
        for _ in range(n - 1):
            out.append(await self.add(out[-1]))
        return out

    async def order(
        self,
        seller: D,
        *,
        amount: int = 10000,
        placed_at: datetime | None = None,
        buyer: str | None = None,
        device: str | None = None,
        payment: str | None = None,
        ip: str | None = None,
        refunded: int = 0,
    ) -> int:
        n = next(_seq)
        return await self.session.scalar(
            text("""
            INSERT INTO orders (source, external_id, body_hash, card_id, seller_id, amount, currency, placed_at,
                                refunded_amount, buyer_ref_hash, buyer_device_hash, buyer_ip_hash, buyer_payment_hash)
            VALUES ('test', :ext, '\\x00', :card, :seller, :amount, 'CNY', :placed, :refunded, :ref, :dev, :ip, :pay)
            RETURNING id
        """),
            {
                "ext": f"o{n}",
                "card": seller.card_id,
                "seller": seller.id,
                "amount": amount,
                "placed": placed_at or datetime.now(UTC) - timedelta(minutes=5),
                "refunded": refunded,
                "ref": self.h("buyer_ref", buyer),
                "dev": self.h("device", device),
                "ip": self.h("ip", ip),
                "pay": self.h("payment", payment),
            },
        )

    async def plan_id(self) -> int:
        found = await self.session.scalar(text("SELECT id FROM commission_plan ORDER BY id LIMIT 1"))
        if found:
            return found
        return await self.session.scalar(
            text("""
            INSERT INTO commission_plan (version, name, max_levels, hold_days, min_order_amount, effective_from)
            VALUES (1, 'test', 3, 15, 0, now() - interval '1 year') RETURNING id""")
        )

    async def commission(
        self,
        beneficiary: D,
        amount: int,
        *,
        status: str = "withheld",
        hold_id: int | None = None,
        hold_until: datetime | None = None,
    ) -> int:
        """A commission of ``amount`` accrued to ``beneficiary`` (withheld under ``hold_id`` or pending)."""
        order_id = await self.order(beneficiary, amount=amount * 10)
        cid = await self.session.scalar(
            text("""
            INSERT INTO commission (order_id, level, beneficiary_id, plan_id, rank_used, rate_bps, base, amount,
                                    status, hold_until, withheld_hold_id)
            VALUES (:o, 1, :b, :p, 'member', 1000, :base, :a, :s, :hu, :h) RETURNING id
        """),
            {
                "o": order_id,
                "b": beneficiary.id,
                "p": await self.plan_id(),
                "base": amount * 10,
                "a": amount,
                "s": status,
                "hu": hold_until or datetime.now(UTC) + timedelta(days=15),
                "h": hold_id,
            },
        )
        await ensure_accounts(self.session, distributor_ids=[beneficiary.id])
        await post(
            self.session,
            kind="commission_accrued",
            postings=[
                Posting("commission_expense", -amount),
                Posting(status if status == "withheld" else "pending", amount, beneficiary.id, cid),
            ],
        )
        return cid

    async def balances(self, d: D) -> dict[str, int]:
        # this session has not committed: credits queued for commit go into the balances now
        await apply_deferred_balances(self.session)
        rows = await self.session.execute(
            text("SELECT kind, balance FROM ledger_account WHERE distributor_id = :d"), {"d": d.id}
        )
        return {r.kind: int(r.balance) for r in rows}

    async def set_mode(self, rule: str, mode: str, **params: Any) -> None:
        await rules_mod.update_rule(self.session, SYSTEM, rule, mode=mode, params=params or None)

    async def active_holds(self, d: D) -> list[Any]:
        return (
            await self.session.execute(
                text("""
            SELECT id, reason, rule_name FROM hold WHERE distributor_id = :d AND lifted_at IS NULL
               AND started_at <= now() AND (ends_at IS NULL OR ends_at > now()) ORDER BY id"""),
                {"d": d.id},
            )
        ).all()


@pytest.fixture
async def net(session: AsyncSession, settings: Settings) -> Net:
    return Net(session, settings)


@pytest.fixture
def staff(make_key):
    async def _make(*roles: str, name: str = "staff") -> dict[str, str]:
        return {"Authorization": f"Bearer {await make_key(*roles, name=name)}"}

    return _make
