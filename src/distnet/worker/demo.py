"""``distnet demo``: a synthetic but realistic network run end to end, in-process, through the real
HTTP app and services, on a throwaway database, with a summary.

1. a root and N distributors recruited by preferential attachment (a few recruit many, most recruit
   nobody: the power law seen in real MLM networks), with contact data and payout accounts (bank card, Alipay, WeChat);
2. orders through ``POST /api/v1/orders`` on each seller's own card: sellers Pareto-weighted,
   amounts log-normal, placed over the last 40 days; some refunds; a few order-brushing rings
   (one buyer device behind many orders of one seller);
3. settlement, a payout run (create, four-eyes approval, bank file, bank results), a risk scan,
   ledger verification, and the outbox events relayed to an in-process dramatiq worker.

The demo never touches the operator's data: it creates database ``distnet_demo_<hex>`` on the
configured (or embedded) PostgreSQL server and drops it afterwards (``--keep`` keeps it), and uses
its own Redis key namespace, removed afterwards.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import logging
import math
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import AsyncTestClient
from rich.console import Console
from rich.table import Table

from distnet.app import create_app
from distnet.db import make_engine, make_sessionmaker, resolve_database_url, resolve_redis_url
from distnet.events.relay import relay_outbox
from distnet.kit.auth import create_key
from distnet.kit.embedded import create_database, drop_database
from distnet.migrate import upgrade
from distnet.settings import BrokerSettings, get_settings, read_section
from distnet.worker import repository as repo
from distnet.worker.broker import broker, configure_worker_database
from distnet.worker.runner import start_worker

if not read_section(BrokerSettings).namespace.startswith("distnet-demo-"):
    # the broker is configured when its module is first imported: ``distnet demo`` sets its own
    # namespace before importing this module, so a production worker on the same Redis never
    # takes a demo message (it would run it against the real database)
    raise RuntimeError(
        "import distnet.worker.demo only after setting DISTNET_BROKER_NAMESPACE=distnet-demo-..."
    )

console = Console()


@dataclass
class Report:
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def add(self, section: str, what: str, value: Any) -> None:
        self.rows.append((section, what, str(value)))


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def _minor(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").partition(".")
    return sign * (int(whole) * 100 + int((frac + "00")[:2]))


class Demo:
    def __init__(
        self, client: Any, sessionmaker: Any, *, distributors: int, orders: int, seed: int, report: Report
    ) -> None:
        self.client = client
        self.sessionmaker = sessionmaker
        self.n_distributors = distributors
        self.n_orders = orders
        self.rng = random.Random(seed)
        self.report = report
        from distnet.settings import get_settings

        documents = get_settings().notify
        self.consent = {
            "terms_version": documents.terms_version,
            "privacy_version": documents.privacy_version,
        }
        self.keys: dict[str, dict[str, str]] = {}
        self.people: list[dict[str, Any]] = []
        self.recruits: Counter[int] = Counter()
        self.placed: list[dict[str, Any]] = []
        self._ext = 0

    # ------------------------------------------------------------------ plumbing

    def _ext_id(self, prefix: str) -> str:
        self._ext += 1
        return f"{prefix}-{self._ext:07d}"

    async def _post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return await self.client.post(path, json=body, headers=headers or {})

    async def _gather(self, jobs: list[Callable[[], Awaitable[Any]]], concurrency: int = 8) -> list[Any]:
        gate = asyncio.Semaphore(concurrency)

        async def one(job: Callable[[], Awaitable[Any]]) -> Any:
            async with gate:
                return await job()

        return await asyncio.gather(*(one(j) for j in jobs))

    async def make_keys(self) -> None:
        async with self.sessionmaker() as s:
            for name, roles in (
                ("admin", ["admin"]),
                ("finance", ["finance"]),
                ("approver", ["finance_approver"]),
                ("risk", ["risk_admin"]),
            ):
                _, raw = await create_key(s, name=f"demo-{name}", roles=roles)
                self.keys[name] = {"Authorization": f"Bearer {raw}"}
            await s.commit()

    async def _payout_account(self, person: dict[str, Any], i: int) -> None:
        """Where the distributor is paid: mostly bank cards, some Alipay and WeChat."""
        from distnet.payout_accounts.rules import luhn_ok, resident_id_check_char

        kind = self.rng.choices(["bank_card", "alipay", "wechat"], weights=[6, 3, 1])[0]
        body: dict[str, Any] = {"method": kind, "holder_name": person.get("name") or f"Distributor {i}"}
        if kind == "bank_card":
            digits = f"622202{self.rng.randrange(10**12):012d}"
            digits += next(d for d in "0123456789" if luhn_ok(digits + d))
            body.update(account_number=digits, bank_name="中国工商银行", bank_branch="北京分行")
        elif kind == "alipay":
            body["account_number"] = f"139{self.rng.randrange(10**8):08d}"
        else:
            body["account_number"] = "o" + secrets.token_urlsafe(21)[:27]
        first17 = (
            f"110101{1970 + self.rng.randrange(35)}0{self.rng.randrange(1, 10)}1{self.rng.randrange(10)}"
            f"{self.rng.randrange(1000):03d}"
        )
        body["resident_id"] = first17 + resident_id_check_char(first17)
        resp = await self.client.put(
            f"/api/v1/distributors/{person['id']}/payout-account",
            json=body,
            headers={"Authorization": f"Bearer {person['api_key']}"},
        )
        resp.raise_for_status()

    # ------------------------------------------------------------------ steps

    async def network(self) -> None:
        regions = ["east", "south", "north", "west", "central"]

        def body(i: int) -> dict[str, Any]:
            return {
                "name": f"Distributor {i}",
                "phone": f"+86 139{self.rng.randrange(10**8):08d}",
                "region": self.rng.choice(regions),
                "device_id": f"dev-{secrets.token_hex(6)}",
                "ip": f"10.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}",
                "consent": self.consent,
            }

        resp = await self._post("/api/v1/distributors", body(0), self.keys["admin"])
        resp.raise_for_status()
        self.people.append(resp.json())
        await self._payout_account(resp.json(), 0)
        # Preferential attachment: sponsor chosen with weight (recruits + 1)^1.2, so recruiting
        # follows a power law; registrations are sequential because each changes the weights.
        for i in range(1, self.n_distributors):
            weights = [(self.recruits[p["id"]] + 1) ** 1.2 for p in self.people]
            sponsor = self.rng.choices(self.people, weights=weights)[0]
            resp = await self._post("/api/v1/distributors", {**body(i), "sponsor_code": sponsor["code"]})
            resp.raise_for_status()
            self.people.append(resp.json())
            await self._payout_account(resp.json(), i)
            self.recruits[sponsor["id"]] += 1
        counts = sorted(self.recruits.values(), reverse=True)
        self.report.add("network", "distributors", len(self.people))
        self.report.add("network", "top recruiters (direct recruits)", ", ".join(map(str, counts[:5])))
        self.report.add(
            "network",
            "distributors who recruited nobody",
            f"{sum(1 for p in self.people if not self.recruits[p['id']])}",
        )

    async def orders(self) -> None:
        now = datetime.now(UTC)
        # Pareto seller activity: a few distributors sell most.
        activity = [self.rng.paretovariate(1.3) for _ in self.people]
        sellers = self.rng.choices(self.people, weights=activity, k=self.n_orders)
        categories = ["beauty", "health", "home", "food", "apparel"]

        def order(
            seller: dict[str, Any],
            *,
            buyer: dict[str, Any] | None = None,
            placed_at: datetime | None = None,
            amount: int | None = None,
        ) -> Callable[[], Awaitable[Any]]:
            amount = amount or max(500, int(self.rng.lognormvariate(math.log(15000), 0.7)))
            body: dict[str, Any] = {
                "external_id": self._ext_id("demo"),
                "card_number": seller["card"]["number"],
                "amount": _money(amount),
                "category": self.rng.choice(categories),
                "channel": self.rng.choice(["app", "mini-program", "store"]),
                "placed_at": (placed_at or now - timedelta(days=self.rng.uniform(0, 40))).isoformat(),
                "buyer": buyer
                or {
                    "ref": f"buyer-{self.rng.randrange(10**6)}",
                    "device_id": f"bdev-{self.rng.randrange(10**6)}",
                },
            }

            async def send() -> Any:
                return await self._post(
                    "/api/v1/orders", body, {"Authorization": f"Bearer {seller['api_key']}"}
                )

            return send

        jobs = [order(s) for s in sellers]
        # Order brushing: a few sellers pump orders from one buyer device within hours.
        for ring in range(3):
            seller = self.rng.choice(self.people)
            device = {
                "ref": f"brusher-{ring}",
                "device_id": f"brush-dev-{ring}",
                "ip": f"172.16.0.{ring + 1}",
            }
            start = now - timedelta(days=self.rng.uniform(1, 10))
            jobs += [
                order(seller, buyer=device, placed_at=start + timedelta(minutes=7 * k), amount=990)
                for k in range(12)
            ]
        self.rng.shuffle(jobs)
        responses = await self._gather(jobs)
        statuses = Counter(r.status_code for r in responses)
        self.placed = [r.json() for r in responses if r.status_code == 201]
        gmv = sum(_minor(o["amount"]) for o in self.placed)
        self.report.add("orders", "placed via POST /api/v1/orders", len(self.placed))
        refused = {k: v for k, v in statuses.items() if k != 201}
        if refused:
            self.report.add(
                "orders", "refused (status: count)", ", ".join(f"{k}: {v}" for k, v in refused.items())
            )
        self.report.add("orders", "gross sales", _money(gmv))

        refunds = self.rng.sample(self.placed, k=max(1, len(self.placed) // 20)) if self.placed else []

        def refund(o: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
            part = _minor(o["amount"]) if self.rng.random() < 0.5 else _minor(o["amount"]) // 2
            return lambda: self._post(
                f"/api/v1/orders/{o['id']}/refunds",
                {"external_id": self._ext_id("rf"), "amount": _money(part)},
                self.keys["admin"],
            )

        done = await self._gather([refund(o) for o in refunds])
        self.report.add("orders", "refunds (full or half)", sum(1 for r in done if r.status_code == 201))

    async def settle(self) -> None:
        resp = await self._post("/api/v1/settlements", None, self.keys["finance"])
        if resp.status_code == 404:
            self.report.notes.append("settlement: POST /api/v1/settlements not available; skipped")
            return
        resp.raise_for_status()
        result = resp.json()
        self.report.add("settlement", "commissions made available", result.get("moved", "?"))

    async def payouts(self) -> None:
        resp = await self.client.post(
            "/api/v1/payout-runs",
            json={"min_amount": "1.00", "note": "demo"},
            headers={**self.keys["finance"], "Idempotency-Key": self._ext_id("payout")},
        )
        if resp.status_code == 404:
            self.report.notes.append("payouts: POST /api/v1/payout-runs not available; skipped")
            return
        resp.raise_for_status()
        run = resp.json()
        self.report.add(
            "payouts", "run items / amount", f"{run['item_count']} / {run.get('total_amount', '?')}"
        )
        if not run["item_count"]:
            return
        resp = await self._post(f"/api/v1/payout-runs/{run['id']}/approve", None, self.keys["approver"])
        resp.raise_for_status()
        bank = await self.client.get(
            f"/api/v1/payout-runs/{run['id']}/export?format=csv", headers=self.keys["finance"]
        )
        bank.raise_for_status()
        rows = list(csv.DictReader(io.StringIO(bank.text)))
        results = []
        for r in rows:  # the bank pays most lines; a few accounts bounce
            if self.rng.random() < 0.05:
                results.append({"item_id": int(r["item_id"]), "status": "failed", "reason": "account closed"})
            else:
                results.append(
                    {
                        "item_id": int(r["item_id"]),
                        "status": "paid",
                        "reference": f"BK{r['item_id']}",
                        "amount": r["amount"],
                    }
                )
        resp = await self._post(
            f"/api/v1/payout-runs/{run['id']}/results", {"results": results}, self.keys["finance"]
        )
        resp.raise_for_status()
        paid = sum(1 for r in results if r["status"] == "paid")
        self.report.add("payouts", "bank results (paid / failed)", f"{paid} / {len(results) - paid}")
        self.report.add("payouts", "run status", resp.json().get("status", "?"))

    async def risk(self) -> None:
        resp = await self._post("/api/v1/risk/scans", None, self.keys["risk"])
        if resp.status_code == 404:
            self.report.notes.append("risk: POST /api/v1/risk/scans not available; skipped")
            return
        resp.raise_for_status()
        cases = await self.client.get("/api/v1/risk/cases", headers=self.keys["risk"])
        items = cases.json().get("items", []) if cases.status_code == 200 else []
        by_rule = Counter(c.get("rule", "?") for c in items)
        self.report.add(
            "risk", "cases by rule", ", ".join(f"{k}: {v}" for k, v in sorted(by_rule.items())) or "0"
        )

    async def ledger(self) -> None:
        resp = await self.client.get("/api/v1/ledger/verify", headers=self.keys["admin"])
        if resp.status_code == 404:
            self.report.notes.append("ledger: GET /api/v1/ledger/verify not available; skipped")
            return
        report = resp.json()
        bad = [c.get("name", "?") for c in report.get("checks", []) if not c.get("ok")]
        self.report.add("ledger", "verify", "ok" if report.get("ok") else f"FAILED: {', '.join(bad)}")

    async def events(self, broker: Any) -> None:
        published = 0
        while True:
            async with self.sessionmaker() as s:
                result = await relay_outbox(s, limit=1000, broker=broker)
                await s.commit()
            published += result.published
            if result.error:
                self.report.notes.append(
                    f"events: broker refused ({result.error}); events wait in the outbox"
                )
                break
            if not result.published:
                break
        for queue in sorted(broker.get_declared_queues()):
            await asyncio.to_thread(broker.join, queue, timeout=120_000)
        async with self.sessionmaker() as s:
            topics = (await s.execute(repo.DEMO_EVENTS_BY_TOPIC)).all()
            handled = (await s.execute(repo.DEMO_PROCESSED_EVENTS)).scalar_one()
        self.report.add("events", "relayed to the worker", published)
        self.report.add("events", "by topic", ", ".join(f"{t}: {n}" for t, n in topics[:8]))
        self.report.add("events", "consumer deliveries recorded (processed_event)", handled)

    async def closure(self) -> None:
        """One distributor closes the account (注销) the verified way: a one-time code (to the inbox,
        as demo distributors confirmed no phone) and a reason; the state says what it waits for."""
        async with self.sessionmaker() as s:
            blocked = set(await s.scalars(repo.DEMO_BLOCKED_FROM_CLOSING))
        person = next((p for p in reversed(self.people[1:]) if p["id"] not in blocked), None)
        if person is None:
            self.report.notes.append("closure: every distributor is blocked; skipped")
            return
        headers = {"Authorization": f"Bearer {person['api_key']}"}
        (await self._post("/api/v1/me/closure/code", None, headers)).raise_for_status()
        inbox = (await self.client.get("/api/v1/me/notifications", headers=headers)).json()
        code = next(
            m.group(1)
            for i in inbox["items"]
            if i["kind"] == "verification_code" and (m := re.search(r"\b(\d{6})\b", i["body"]))
        )
        resp = await self._post("/api/v1/me/closure", {"code": code, "reason": "no_longer_selling"}, headers)
        resp.raise_for_status()
        view = resp.json()
        waits = ", ".join(w["code"] for w in view["waits_for"]) or "nothing"
        self.report.add(
            "closure",
            f"distributor {person['code']} (verified by code)",
            f"{view['state']}, waits for {waits}",
        )

    async def notices(self) -> None:
        async with self.sessionmaker() as s:
            rows = (await s.execute(repo.DEMO_INBOX_BY_KIND)).all()
        self.report.add(
            "notifications", "inbox notices by kind", ", ".join(f"{k}: {n}" for k, n in rows) or "0"
        )

    async def money(self) -> None:
        async with self.sessionmaker() as s:
            rows = (await s.execute(repo.DEMO_COMMISSIONS_BY_LEVEL)).all()
            statuses = (await s.execute(repo.DEMO_COMMISSIONS_BY_STATUS)).all()
        for level, n, net in rows:
            self.report.add("commissions", f"level {level}: count / net amount", f"{n} / {_money(int(net))}")
        self.report.add("commissions", "by status", ", ".join(f"{s}: {n}" for s, n in statuses))


async def _run(distributors: int, orders: int, seed: int, database_url: str, report: Report) -> None:
    settings = get_settings()
    settings = dataclasses.replace(settings, notify=dataclasses.replace(settings.notify, rate_limits="off"))
    configure_worker_database(database_url)
    worker = await asyncio.to_thread(start_worker, 4)
    engine = make_engine(database_url, pool_size=4)
    app = create_app(settings, database_url=database_url, redis_url=resolve_redis_url(settings))
    for noisy in ("httpx", "dramatiq", "distnet", "apscheduler"):  # the summary is the output
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        async with AsyncTestClient(app=app, timeout=120) as client:
            demo = Demo(
                client,
                make_sessionmaker(engine),
                distributors=distributors,
                orders=orders,
                seed=seed,
                report=report,
            )
            await demo.make_keys()
            for name, step in (
                ("network", demo.network),
                ("orders", demo.orders),
                ("settlement", demo.settle),
                ("payouts", demo.payouts),
                ("risk scan", demo.risk),
                ("closure", demo.closure),
                ("events", lambda: demo.events(broker)),
                ("ledger verify", demo.ledger),
                ("notifications", demo.notices),
                ("commissions", demo.money),
            ):
                started = time.monotonic()
                with console.status(f"demo: {name}..."):
                    await step()
                report.timings.append((name, time.monotonic() - started))
    finally:
        await engine.dispose()
        await asyncio.to_thread(worker.stop, 30_000)
        configure_worker_database(None)


def run_demo(*, distributors: int = 300, orders: int = 800, seed: int = 7, keep: bool = False) -> Report:
    settings = get_settings()
    tag = secrets.token_hex(4)
    server_url = resolve_database_url(settings)
    name = f"distnet_demo_{tag}"
    console.print(
        f"[bold]distnet demo[/]: database {name} on {server_url.rsplit('@', 1)[-1].rsplit('/', 1)[0]}"
    )
    database_url = create_database(server_url, name)
    report = Report()
    try:
        started = time.monotonic()
        with console.status("demo: migrating the demo database..."):
            upgrade(database_url)
        report.timings.append(("migrations", time.monotonic() - started))
        asyncio.run(_run(distributors, orders, seed, database_url, report))
    finally:
        if keep:
            console.print(f"kept database {database_url}")
        else:
            drop_database(server_url, name)
        _forget_redis_namespace(resolve_redis_url(settings), read_section(BrokerSettings).namespace)
    _print(report)
    return report


def _forget_redis_namespace(url: str, namespace: str) -> None:
    if not namespace.startswith("distnet-demo-"):
        return  # an operator-chosen namespace is not ours to delete
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass
    finally:
        client.close()


def _print(report: Report) -> None:
    table = Table(title="distnet demo", show_lines=False)
    table.add_column("area", style="bold cyan")
    table.add_column("what", no_wrap=True)
    table.add_column("value", justify="right")
    last = None
    for section, what, value in report.rows:
        table.add_row(section if section != last else "", what, value)
        last = section
    console.print(table)
    console.print("steps: " + ", ".join(f"{n} {t:.1f}s" for n, t in report.timings))
    for note in report.notes:
        console.print(f"[yellow]note[/]: {note}")
