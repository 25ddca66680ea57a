"""CSV import with COPY: validation per line, idempotency shared with the API, attribution."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from typer.testing import CliRunner

from distnet.orders.importer import import_csv
from tests.factories import auth, create_plan
from tests.orders.helpers import order_body, verify_ok


def _csv(rows: list[list[str]]) -> bytes:
    return ("\n".join(",".join(r) for r in rows) + "\n").encode()


async def test_import_validates_and_attributes(client, admin_headers, chain, sessionmaker, settings):
    root, a, b, c = chain
    # an order that came through the API first, with buyer data: the same row in the file is a replay
    api = await client.post(
        "/api/v1/orders",
        json=order_body(
            c,
            "10.00",
            external_id="api-1",
            source="shop",
            placed_at="2026-03-01T10:00:00Z",
            buyer={"ref": "Buyer-9"},
        ),
        headers=auth(c),
    )
    assert api.status_code == 201
    card = c["card"]["number"]
    header = ["external_id", "card_number", "amount", "source", "placed_at", "buyer_ref", "category"]
    data = _csv(
        [
            header,
            ["imp-1", card, "100.00", "", "2026-03-01T10:00:00Z", "x", ""],
            ["imp-2", card, "50.5", "", "", "", "books"],
            [
                "api-1",
                card,
                "10.00",
                "shop",
                "2026-03-01T10:00:00+00:00",
                " buyer-9 ",
                "",
            ],  # replay of the API order
            ["api-1", card, "11.00", "shop", "2026-03-01T10:00:00Z", "", ""],  # conflict
            ["bad-1", card, "1.001", "", "", "", ""],
            ["bad-2", "nope", "1.00", "", "", "", ""],
            ["bad-3", card, "1.00", "", "2999-01-01T00:00:00Z", "", ""],
            ["bad-4", card, "1.00", "", "2026-02-30T00:00:00Z", "", ""],
            ["bad-5", card, "1.00", "", "2026-02-03T00:00:00", "", ""],
            ["imp-1", card, "100.00", "", "2026-03-01T10:00:00Z", "x", ""],  # duplicate in the file: replay
        ]
    )
    async with sessionmaker() as s:
        result = await import_csv(s, settings, [data[:37], data[37:]], header=header)
        await s.commit()
    assert (result["created"], result["replayed"], result["conflicts"], result["errors"]) == (2, 2, 1, 5)
    assert [e["line"] for e in result["error_lines"]] == [6, 7, 8, 9, 10]
    assert result["error_lines"][0]["error"].startswith("amount")
    assert result["error_lines"][1]["error"].startswith("card_number")
    assert "future" in result["error_lines"][2]["error"]
    assert result["commissions"] == 6 and result["commission_amount"] == (1000 + 300 + 100) + (505 + 151 + 50)
    async with sessionmaker() as s:
        o = (
            await s.execute(
                text("SELECT amount, category, placed_at FROM orders WHERE external_id = 'imp-2'")
            )
        ).one()
        assert o.amount == 5050 and o.category == "books"
        assert await s.scalar(text("SELECT count(*) FROM orders")) == 3
        assert await s.scalar(text("SELECT count(*) FROM outbox_event WHERE topic = 'order.created'")) == 3
    await verify_ok(client, admin_headers)
    # the same file again: nothing new
    async with sessionmaker() as s:
        again = await import_csv(s, settings, [data], header=header)
        await s.commit()
    assert again["created"] == 0 and again["replayed"] == 4 and again["conflicts"] == 1


async def test_import_refuses_unknown_columns(sessionmaker, settings):
    from distnet.kit.errors import ValidationFailed

    async with sessionmaker() as s:
        try:
            await import_csv(
                s, settings, [b"external_id,amount,colour\n"], header=["external_id", "amount", "colour"]
            )
        except ValidationFailed as exc:
            assert "colour" in exc.message and "card_number" in exc.message
        else:  # pragma: no cover
            raise AssertionError("expected a validation error")


async def test_cli_import_dry_run_and_execute(
    client, admin_headers, chain, database_url, monkeypatch, tmp_path, sessionmaker
):
    from distnet.cli import app
    from distnet.settings import get_settings

    c = chain[-1]
    path = tmp_path / "orders.csv"
    path.write_bytes(
        _csv([["external_id", "card_number", "amount"], ["cli-1", c["card"]["number"], "20.00"]])
    )
    monkeypatch.setenv("DISTNET_DATABASE_URL", database_url)
    monkeypatch.setenv("DISTNET_SECRET_KEY", "test-secret-key")
    get_settings.cache_clear()
    try:
        dry = await asyncio.to_thread(CliRunner().invoke, app, ["orders", "import", str(path)])
        assert dry.exit_code == 0, dry.output
        assert "dry run" in dry.output
        async with sessionmaker() as s:
            assert await s.scalar(text("SELECT count(*) FROM orders")) == 0
        done = await asyncio.to_thread(
            CliRunner().invoke, app, ["orders", "import", str(path), "--execute", "--parts", "2"]
        )
        assert done.exit_code == 0, done.output
        assert "created 1" in done.output
    finally:
        get_settings.cache_clear()
    async with sessionmaker() as s:
        assert await s.scalar(text("SELECT count(*) FROM commission")) == 3


async def test_large_imports_are_attributed_in_chunks(
    client, admin_headers, chain, sessionmaker, settings, monkeypatch
):
    """An import bigger than a chunk is attributed one id range at a time: every order still gets
    its three levels at floor(base x bps / 10000), the sums are posted once, as one balanced
    ledger transaction with one posting per account, and the balances equal the commissions."""
    from distnet.commissions import repository as commissions_repo

    monkeypatch.setattr(commissions_repo, "CHUNK_ORDERS", 3)
    root, a, b, c = chain
    card = c["card"]["number"]
    amounts = [101 + 37 * i for i in range(10)]  # minor units, none a multiple of 100
    header = ["external_id", "card_number", "amount"]
    data = _csv([header, *([f"ch-{i}", card, f"{m / 100:.2f}"] for i, m in enumerate(amounts))])
    async with sessionmaker() as s:
        result = await import_csv(s, settings, [data], header=header)
        await s.commit()
    assert result["created"] == 10 and result["commissions"] == 30
    assert result["commission_amount"] == sum(
        m * 1000 // 10000 + m * 300 // 10000 + m * 100 // 10000 for m in amounts
    )
    async with sessionmaker() as s:
        per_level = dict(
            (await s.execute(text("SELECT level, sum(amount) FROM commission GROUP BY level"))).all()
        )
        postings = (
            await s.execute(
                text(
                    "SELECT count(DISTINCT t.id), count(*), count(DISTINCT p.account_id), sum(p.amount) FROM ledger_posting p "
                    "JOIN ledger_transaction t ON t.id = p.transaction_id WHERE t.ref_type = 'order_import'"
                )
            )
        ).one()
        pending = dict(
            (
                await s.execute(
                    text(
                        "SELECT distributor_id, balance FROM ledger_account WHERE kind = 'pending' AND balance <> 0"
                    )
                )
            ).all()
        )
    assert per_level == {
        1: sum(m * 1000 // 10000 for m in amounts),
        2: sum(m * 300 // 10000 for m in amounts),
        3: sum(m * 100 // 10000 for m in amounts),
    }
    assert tuple(postings) == (1, 4, 4, 0)  # three beneficiaries' pending accounts and the expense account
    assert pending == {c["id"]: per_level[1], b["id"]: per_level[2], a["id"]: per_level[3]}
    await verify_ok(client, admin_headers)


async def test_an_import_skips_the_levels_a_plan_does_not_qualify(
    client, admin_headers, chain, sessionmaker, settings, monkeypatch
):
    """The bulk statement has a variant without the qualification step (no plan judges a level);
    once a plan does, an import judges every level as a single order would: level 3 needs rank
    silver, the grandparent is a member, so no order pays it and each records why. The chunk's
    planner settings end with the chunks."""
    from distnet.commissions import repository as commissions_repo

    monkeypatch.setattr(commissions_repo, "CHUNK_ORDERS", 3)
    root, a, b, c = chain
    await create_plan(
        client, admin_headers, name="judged", qualifications=[{"level": 3, "min_rank": "silver"}]
    )
    header = ["external_id", "card_number", "amount"]
    data = _csv([header, *([f"q-{i}", c["card"]["number"], "50.00"] for i in range(4))])
    async with sessionmaker() as s:
        result = await import_csv(s, settings, [data], header=header)
        nested_loops = await s.scalar(text("SELECT current_setting('enable_nestloop')"))
        await s.commit()
    assert result["created"] == 4 and result["commissions"] == 8
    assert nested_loops == "on"
    async with sessionmaker() as s:
        levels = (
            await s.execute(text("SELECT level, count(*), sum(amount) FROM commission GROUP BY 1 ORDER BY 1"))
        ).all()
        skips = (await s.execute(text("SELECT level, beneficiary_id, min_rank FROM commission_skip"))).all()
    assert [tuple(x) for x in levels] == [(1, 4, 4 * 5000 * 100 // 10000), (2, 4, 4 * 5000 * 200 // 10000)]
    assert [tuple(x) for x in skips] == [(3, a["id"], "silver")] * 4
    await verify_ok(client, admin_headers)


async def test_import_times_on_both_parse_paths(client, admin_headers, chain, sessionmaker, settings):
    """Plain days 1-28 are cast directly; days 29-31 and other shapes go through the guarded parse.
    Both give the same instants, and a file of only new orders needs no replay lookup."""
    from datetime import UTC, datetime, timedelta, timezone

    card = chain[3]["card"]["number"]
    header = ["external_id", "card_number", "amount", "placed_at"]
    data = _csv(
        [
            header,
            ["t-1", card, "1.00", "2026-01-31T23:59:59.5+08:00"],
            ["t-2", card, "1.00", "2026-01-15 08:30:00.25-0130"],
            ["t-3", card, "1.00", "2024-02-29T00:00:00Z"],
            ["t-4", card, "1.00", "2026-01-28T12:00Z"],
        ]
    )
    async with sessionmaker() as s:
        result = await import_csv(s, settings, [data], header=header)
        await s.commit()
    assert (result["created"], result["replayed"], result["conflicts"], result["errors"]) == (4, 0, 0, 0)
    async with sessionmaker() as s:
        placed = dict((await s.execute(text("SELECT external_id, placed_at FROM orders"))).all())
    assert placed == {
        "t-1": datetime(2026, 1, 31, 23, 59, 59, 500000, tzinfo=timezone(timedelta(hours=8))),
        "t-2": datetime(2026, 1, 15, 8, 30, 0, 250000, tzinfo=timezone(-timedelta(hours=1, minutes=30))),
        "t-3": datetime(2024, 2, 29, tzinfo=UTC),
        "t-4": datetime(2026, 1, 28, 12, 0, tzinfo=UTC),
    }
    await verify_ok(client, admin_headers)


async def test_concurrent_imports_of_the_same_keys(client, admin_headers, chain, sessionmaker, settings):
    """A file whose keys another import is inserting waits for it, then counts those rows as
    replays or conflicts against what the other one stored (the one-statement path fails on the
    unique index and the import falls back to the staged path); nothing is created twice."""
    card = chain[-1]["card"]["number"]
    header = ["external_id", "card_number", "amount"]
    first = _csv([header, ["race-1", card, "1.00"], ["race-2", card, "2.00"]])
    second = _csv([header, ["race-2", card, "2.00"], ["race-3", card, "3.00"], ["race-1", card, "9.00"]])
    async with sessionmaker() as a, sessionmaker() as b:
        one = await import_csv(a, settings, [first], header=header)
        racing = asyncio.create_task(import_csv(b, settings, [second], header=header))
        await asyncio.sleep(0.5)
        assert not racing.done()  # waiting on the first import's uncommitted keys
        await a.commit()
        two = await racing
        await b.commit()
    assert (one["created"], one["replayed"], one["conflicts"]) == (2, 0, 0)
    assert (two["created"], two["replayed"], two["conflicts"], two["errors"]) == (1, 1, 1, 0)
    assert two["commissions"] == 3
    async with sessionmaker() as s:
        stored = dict(
            (
                await s.execute(
                    text("SELECT external_id, amount FROM orders WHERE external_id LIKE 'race-%'")
                )
            ).all()
        )
    assert stored == {"race-1": 100, "race-2": 200, "race-3": 300}
    await verify_ok(client, admin_headers)


async def test_import_in_parts_matches_one_transaction(client, admin_headers, chain, sessionmaker, settings):
    """On three connections (each a share of the keys): the same outcome, error lines and
    commissions as one transaction gives, duplicates of a key in the file still counted once."""
    from distnet.orders.importer import import_csv_parts

    card = chain[3]["card"]["number"]
    header = ["external_id", "card_number", "amount", "source"]
    rows = [[f"p-{i}", card, f"{1 + i}.25", "" if i % 2 else "shop"] for i in range(30)]
    rows += [
        ["p-3", card, "4.25", ""],  # a duplicate in the file: replay
        ["p-5", card, "9.99", ""],  # the same key, another amount: conflict
        ["p-bad", card, "-1", ""],  # invalid, line 34
        ["p-x", "0000", "1.00", ""],
    ]  # no such card, line 35
    data = _csv([header, *rows])
    result = await import_csv_parts(sessionmaker, settings, [data[:200], data[200:]], header=header, parts=3)
    assert (result["created"], result["replayed"], result["conflicts"], result["errors"]) == (30, 1, 1, 2)
    assert [(e["line"], e["external_id"]) for e in result["error_lines"]] == [(34, "p-bad"), (35, "p-x")]
    assert result["commissions"] == 90
    amounts = [100 * (1 + i) + 25 for i in range(30)]
    assert result["commission_amount"] == sum(
        m * 1000 // 10000 + m * 300 // 10000 + m * 100 // 10000 for m in amounts
    )
    async with sessionmaker() as s:
        stored = dict(
            (await s.execute(text("SELECT source || '/' || external_id, amount FROM orders"))).all()
        )
        imports = await s.scalar(
            text("SELECT count(*) FROM ledger_transaction WHERE ref_type = 'order_import'")
        )
    assert stored == {f"{'import' if i % 2 else 'shop'}/p-{i}": m for i, m in enumerate(amounts)}
    assert 1 < imports <= 3  # a ledger transaction per part
    await verify_ok(client, admin_headers)
    # a dry run in parts writes nothing; the same file again is all replays
    again = await import_csv_parts(sessionmaker, settings, [data], header=header, parts=2, commit=False)
    assert (again["created"], again["replayed"], again["conflicts"], again["errors"]) == (0, 31, 1, 2)


async def test_a_part_that_fails_late_leaves_a_resumable_import(
    client, admin_headers, chain, sessionmaker, settings, monkeypatch
):
    """If the second part fails while attributing, the first part's orders (with their
    commissions) stay committed, the error says so, and importing the same file again finishes."""
    import pytest

    from distnet.orders import importer

    card = chain[3]["card"]["number"]
    header = ["external_id", "card_number", "amount"]
    data = _csv([header, *([f"late-{i}", card, "10.00"] for i in range(20))])
    real = importer._attribute
    calls = []

    async def failing_second(session, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return await real(session, *args, **kwargs)

    monkeypatch.setattr(importer, "_attribute", failing_second)
    with pytest.raises(importer.ImportPartlyCommitted, match="1 of 2 parts"):
        await importer.import_csv_parts(sessionmaker, settings, [data], header=header, parts=2)
    async with sessionmaker() as s:
        first = await s.scalar(text("SELECT count(*) FROM orders"))
        assert 0 < first < 20
        assert await s.scalar(text("SELECT count(*) FROM commission")) == 3 * first
    monkeypatch.setattr(importer, "_attribute", real)
    rest = await importer.import_csv_parts(sessionmaker, settings, [data], header=header, parts=2)
    assert (rest["created"], rest["replayed"]) == (20 - first, first)
    await verify_ok(client, admin_headers)
