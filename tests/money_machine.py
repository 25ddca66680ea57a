"""A stateful fuzz of the money path (issue 13): a hypothesis ``RuleBasedStateMachine`` whose steps
are what the API lets people do with money, in any order hypothesis picks, against a real database.

Steps: orders (inside or past their return window), partial and full refunds (clawbacks once paid,
refunds beyond what is left), manual holds, lifts as cleared or confirmed, appeals claimed and
approved or rejected, forfeits of confirmed holds, settlement (debt netting), payout runs created,
approved, exported and given paid and failed bank results (or cancelled), and repayments of debt.

After every step: ``ledger verify`` passes whole (balanced transactions, balances = postings, the
commission statuses reconciled with the balances, references), no distributor money account is
negative, and a step the API refused (4xx) changed nothing at all. A 5xx fails the run.

Used by ``tests/test_money_fuzz.py`` (bounded, in CI) and ``scripts/fuzz_money.py`` (long runs).
The machine drives the real app through Litestar's ``TestClient``; ``MoneyMachine.env`` must be set
(see :func:`configure`) before hypothesis runs it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, multiple, rule
from litestar.testing import TestClient

from distnet.db import make_engine, make_sessionmaker, session_scope
from distnet.kit.auth import create_key
from distnet.ledger.verify import verify
from distnet.risk.holds import forfeit_due
from tests.factories import RESIDENT_ID, card_number

# Everything that carries money or a money-relevant status: a refused step must leave each of
# these exactly as it was (compared as one md5 per table).
STATE_TABLES = {
    "ledger_posting": "id, transaction_id, account_id, amount",
    "ledger_account": "id, balance",
    "commission": "id, status, reversed, withheld_hold_id, available_at, paid_at",
    "orders": "id, refunded_amount",
    "refund": "id, amount",
    "hold": "id, lifted_at, outcome",
    "appeal": "id, status, assignee_key_id",
    "payout_run": "id, status",
    "payout_item": "id, status, amount",
    "repayment": "id, amount",
}


@dataclass
class Env:
    """What one fuzz run shares across its machines (examples)."""

    client: TestClient
    database_url: str
    reset_sql: list[str]
    """Statements that empty the database between examples."""
    runner: asyncio.Runner
    sessionmaker: Any
    conn: psycopg.Connection[Any]
    """For the state digests and the reset (autocommit)."""
    steps: int = 0
    refused: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    progress: Any = None
    """Called with the Env every 500 steps (long runs report progress)."""


def configure(client: TestClient, database_url: str, reset_sql: list[str]) -> Env:
    runner = asyncio.Runner()
    engine = runner.run(_engine(database_url))
    env = Env(
        client=client,
        database_url=database_url,
        reset_sql=reset_sql,
        runner=runner,
        sessionmaker=make_sessionmaker(engine),
        conn=psycopg.connect(_libpq(database_url), autocommit=True),
    )
    MoneyMachine.env = env
    return env


async def _engine(url: str) -> Any:
    return make_engine(url, pool_size=2)


def close(env: Env) -> None:
    async def dispose() -> None:
        await env.sessionmaker.kw["bind"].dispose()

    env.runner.run(dispose())
    env.runner.close()
    env.conn.close()


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _amount(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


_ids = itertools.count(1)

CENTS = st.integers(min_value=100, max_value=50_000)


class MoneyMachine(RuleBasedStateMachine):
    env: Env

    orders = Bundle("orders")
    holds = Bundle("holds")
    appeals = Bundle("appeals")
    runs = Bundle("runs")

    def __init__(self) -> None:
        super().__init__()
        env = self.env
        for statement in env.reset_sql:
            env.conn.execute(statement)
        keys = env.runner.run(self._keys())
        self.h = {role: {"Authorization": f"Bearer {raw}"} for role, raw in keys.items()}
        # root -> a -> b -> c and root -> e -> f: three levels of commission on c's and f's sales
        root = self._register(None, admin=True)
        a = self._register(root)
        b = self._register(a)
        c = self._register(b)
        e = self._register(root)
        f = self._register(e)
        self.people = [root, a, b, c, e, f]
        self.refused_last = False
        self.state = self._state()

    async def _keys(self) -> dict[str, str]:
        roles = {
            "admin": ["admin"],
            "r1": ["risk_reviewer"],
            "r2": ["risk_reviewer"],
            "finance": ["finance"],
            "approver": ["finance_approver"],
        }
        out = {}
        async with session_scope(self.env.sessionmaker) as session:
            for name, role in roles.items():
                _, out[name] = await create_key(session, name=f"fuzz-{name}", roles=role)
        return out

    def _register(self, sponsor: dict | None, *, admin: bool = False) -> dict:
        body = {
            "name": f"p{next(_ids)}",
            "consent": {"terms_version": "2026-12", "privacy_version": "2026-12"},
        }
        if sponsor is not None:
            body["sponsor_code"] = sponsor["code"]
        resp = self.env.client.post(
            "/api/v1/distributors", json=body, headers=self.h["admin"] if admin else {}
        )
        assert resp.status_code == 201, resp.text
        person = resp.json()
        person["auth"] = {"Authorization": f"Bearer {person['api_key']}"}
        # a registration's bank_account waits for the owner's confirmation (runs skip it), and a later
        # change starts a cooling-off: the machine registers without one and sets a first, confirmed
        # payout account (as an admin), so runs can pay from the first step
        account = {
            "method": "bank_card",
            "holder_name": person.get("name") or "持卡人",
            "account_number": card_number(person["id"]),
            "bank_name": "中国工商银行",
            "bank_branch": "北京分行",
            "resident_id": RESIDENT_ID,
        }
        resp = self.env.client.put(
            f"/api/v1/distributors/{person['id']}/payout-account", json=account, headers=self.h["admin"]
        )
        assert resp.status_code in (200, 201), resp.text
        return person

    # ------------------------------------------------------------------ plumbing

    def _state(self) -> dict[str, str]:
        """One md5 per table of STATE_TABLES, in one query."""
        digests = ", ".join(
            f"(SELECT md5(coalesce(string_agg(row({cols})::text, ',' ORDER BY id), '')) FROM {table})"
            for table, cols in STATE_TABLES.items()
        )
        row = self.env.conn.execute(f"SELECT {digests}").fetchone()
        return dict(zip(STATE_TABLES, row, strict=True))

    def _call(self, name: str, method: str, path: str, *, headers: dict, json: Any = None) -> Any:
        """One API call; a 4xx must have changed nothing. Returns the response."""
        before = self.state  # what the previous step left (reads change nothing)
        resp = self.env.client.request(method, path, json=json, headers=headers)
        assert resp.status_code < 500, f"{name}: {resp.status_code} {resp.text}"
        self.env.steps += 1
        if self.env.progress and self.env.steps % 500 == 0:
            self.env.progress(self.env)
        self.refused_last = resp.status_code >= 400
        key = f"{name}:{'refused' if self.refused_last else 'ok'}"
        self.env.counts[key] = self.env.counts.get(key, 0) + 1
        after = self.state = self._state()
        if self.refused_last:
            self.env.refused += 1
            assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
            changed = [t for t in STATE_TABLES if before[t] != after[t]]
            assert not changed, f"{name} was refused ({resp.status_code} {resp.text}) but changed {changed}"
        return resp

    # ------------------------------------------------------------------ orders and refunds

    def _order(self, seller: int, cents: int, *, past: bool) -> Any:
        person = self.people[seller]
        body = {
            "external_id": f"fz-{next(_ids)}",
            "card_number": person["card"]["number"],
            "amount": _amount(cents),
        }
        if past:  # outside its return window: the next settlement makes it available
            body["placed_at"] = (datetime.now(UTC) - timedelta(days=20)).isoformat()
        resp = self._call("order", "POST", "/api/v1/orders", headers=self.h["admin"], json=body)
        return resp.json()["id"] if resp.status_code == 201 else multiple()

    @rule(target=orders, seller=st.integers(0, 5), cents=CENTS)
    def place_order(self, seller: int, cents: int) -> Any:
        return self._order(seller, cents, past=False)

    @rule(target=orders, seller=st.integers(0, 5), cents=CENTS)
    def place_past_order(self, seller: int, cents: int) -> Any:
        return self._order(seller, cents, past=True)

    @rule(order=orders, part=st.sampled_from(["full", "half", "cent", "too_much"]))
    def refund(self, order: int, part: str) -> None:
        view = self.env.client.get(f"/api/v1/orders/{order}", headers=self.h["admin"]).json()
        remaining = int(view["remaining_amount"].replace(".", ""))
        cents = {"full": remaining, "half": remaining // 2, "cent": 1, "too_much": remaining + 1}[part]
        self._call(
            f"refund_{part}",
            "POST",
            f"/api/v1/orders/{order}/refunds",
            headers=self.h["admin"],
            json={"external_id": f"rf-{next(_ids)}", "amount": _amount(max(cents, 0))},
        )

    # ------------------------------------------------------------------ holds and appeals

    @rule(target=holds, who=st.integers(0, 5))
    def place_hold(self, who: int) -> Any:
        resp = self._call(
            "hold",
            "POST",
            f"/api/v1/cards/{self.people[who]['card']['number']}/holds",
            headers=self.h["r1"],
            json={"reason": "manual", "note": "fuzz"},
        )
        return (resp.json()["id"], who) if resp.status_code == 201 else multiple()

    @rule(hold=holds, outcome=st.sampled_from(["cleared", "confirmed"]))
    def lift(self, hold: tuple[int, int], outcome: str) -> None:
        self._call(
            f"lift_{outcome}",
            "POST",
            f"/api/v1/holds/{hold[0]}/lift",
            headers=self.h["r2"],
            json={"outcome": outcome, "note": "fuzz"},
        )

    @rule(target=appeals, hold=holds)
    def appeal(self, hold: tuple[int, int]) -> Any:
        owner = self.people[hold[1]]
        resp = self._call(
            "appeal",
            "POST",
            "/api/v1/appeals",
            headers=owner["auth"],
            json={"hold_id": hold[0], "statement": "not me"},
        )
        return resp.json()["id"] if resp.status_code == 201 else multiple()

    @rule(appeal=appeals, decision=st.sampled_from(["approve", "reject"]), claim=st.booleans())
    def decide(self, appeal: int, decision: str, claim: bool) -> None:
        if claim:
            self._call("claim", "POST", f"/api/v1/appeals/{appeal}/claim", headers=self.h["r2"])
        self._call(
            f"appeal_{decision}",
            "POST",
            f"/api/v1/appeals/{appeal}/decision",
            headers=self.h["r2"],
            json={"decision": decision, "note": "fuzz"},
        )

    @rule()
    def forfeit_due(self) -> None:
        """The forfeit job, run as if its 14 days had passed for every confirmed hold."""

        async def run() -> int:
            async with session_scope(self.env.sessionmaker) as session:
                return await forfeit_due(session, now=datetime.now(UTC) + timedelta(days=30))

        self.env.runner.run(run())
        self.env.steps += 1
        self.refused_last = False
        self.state = self._state()

    # ------------------------------------------------------------------ settlement, payouts, debt

    @rule()
    def settle(self) -> None:
        self._call("settle", "POST", "/api/v1/settlements", headers=self.h["finance"])

    @rule(target=runs, min_cents=st.sampled_from([100, 1_000, 10_000]))
    def create_run(self, min_cents: int) -> Any:
        resp = self._call(
            "payout_run",
            "POST",
            "/api/v1/payout-runs",
            headers={**self.h["finance"], "Idempotency-Key": f"run-{next(_ids)}"},
            json={"min_amount": _amount(min_cents), "note": "fuzz"},
        )
        return resp.json()["id"] if resp.status_code == 201 else multiple()

    @rule(run=runs)
    def approve(self, run: int) -> None:
        self._call("approve", "POST", f"/api/v1/payout-runs/{run}/approve", headers=self.h["approver"])

    @rule(run=consumes(runs))
    def cancel(self, run: int) -> None:
        self._call("cancel", "POST", f"/api/v1/payout-runs/{run}/cancel", headers=self.h["finance"])

    @rule(
        run=runs,
        outcomes=st.lists(st.sampled_from(["paid", "failed", "skip"]), min_size=1, max_size=6),
        wrong_amount=st.booleans(),
    )
    def bank_results(self, run: int, outcomes: list[str], wrong_amount: bool) -> None:
        """Export the bank file (if the run is approved) and import a result per item; items marked
        "skip" get none yet. A wrong amount makes the whole file refused."""
        export = self.env.client.get(
            f"/api/v1/payout-runs/{run}/export?format=csv", headers=self.h["finance"]
        )
        assert export.status_code < 500, export.text
        if export.status_code != 200:
            self.refused_last = True
            return
        self.state = self._state()  # the first export moves the run to exported: a change of its own
        rows = list(csv.DictReader(io.StringIO(export.text)))
        results = []
        for row, outcome in zip(rows, itertools.cycle(outcomes), strict=False):
            if outcome == "skip":
                continue
            amount = row["amount"]
            if wrong_amount and not results:
                amount = _amount(int(amount.replace(".", "")) + 1)
            item = {"item_id": int(row["item_id"]), "status": outcome, "amount": amount}
            item |= (
                {"reference": f"BK{row['item_id']}"} if outcome == "paid" else {"reason": "account closed"}
            )
            results.append(item)
        if results:
            self._call(
                "bank_results",
                "POST",
                f"/api/v1/payout-runs/{run}/results",
                headers=self.h["finance"],
                json={"results": results},
            )

    @rule(
        min_cents=st.sampled_from([100, 1_000]),
        outcomes=st.lists(st.sampled_from(["paid", "failed", "skip"]), min_size=1, max_size=6),
    )
    def payout_cycle(self, min_cents: int, outcomes: list[str]) -> None:
        """Settle, create a run, approve it, export it and import bank results, in one step."""
        self.settle()
        resp = self._call(
            "payout_run",
            "POST",
            "/api/v1/payout-runs",
            headers={**self.h["finance"], "Idempotency-Key": f"run-{next(_ids)}"},
            json={"min_amount": _amount(min_cents), "note": "fuzz cycle"},
        )
        if resp.status_code != 201 or not resp.json()["item_count"]:
            return
        run = resp.json()["id"]
        self.approve(run)
        self.bank_results(run, outcomes, wrong_amount=False)

    @rule(who=st.integers(0, 5), part=st.sampled_from(["all", "half", "too_much"]))
    def repay(self, who: int, part: str) -> None:
        person = self.people[who]
        owed = int(
            self.env.client.get(f"/api/v1/distributors/{person['id']}/balances", headers=self.h["admin"])
            .json()["owed"]
            .replace(".", "")
        )
        cents = {"all": owed, "half": owed // 2, "too_much": owed + 1}[part]
        self._call(
            f"repay_{part}",
            "POST",
            f"/api/v1/distributors/{person['id']}/repayments",
            headers=self.h["finance"],
            json={"external_id": f"wire-{next(_ids)}", "amount": _amount(cents)},
        )

    # ------------------------------------------------------------------ after every step

    @invariant()
    def ledger_verifies(self) -> None:
        async def run() -> dict[str, Any]:
            async with session_scope(self.env.sessionmaker) as session:
                return await verify(session)

        report = self.env.runner.run(run())
        assert report.ok, [c for c in report.checks if not c.ok]

    @invariant()
    def no_negative_money(self) -> None:
        bad = self.env.conn.execute(
            "SELECT distributor_id, kind, balance FROM ledger_account WHERE distributor_id "
            "IS NOT NULL AND ((kind = 'owed' AND balance > 0) OR (kind <> 'owed' AND "
            "balance < 0))"
        ).fetchall()
        assert not bad, bad


__all__ = ["Env", "MoneyMachine", "close", "configure"]
