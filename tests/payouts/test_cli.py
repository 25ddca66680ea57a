"""``distnet payouts export`` and ``distnet payouts import-results``."""

from __future__ import annotations

import csv
import json

from sqlalchemy import text

from tests.settlement.test_routes import run_cli

RUNS = "/api/v1/payout-runs"


async def test_export_and_import_results_from_the_command_line(
    client, finance, payable, database_url, session, tmp_path
):
    run = (await client.post(RUNS, json={}, headers={**finance["finance"], "Idempotency-Key": "c"})).json()
    code, _, err = await run_cli(
        database_url, "payouts", "export", str(run["id"]), "--out", str(tmp_path / "x.csv")
    )
    assert code == 1 and "payout-run-state" in err  # not approved yet
    await client.post(f"{RUNS}/{run['id']}/approve", headers=finance["approver"])
    bank = tmp_path / "bank.csv"
    code, out, err = await run_cli(database_url, "payouts", "export", str(run["id"]), "--out", str(bank))
    assert code == 0, err
    rows = list(csv.DictReader(bank.open()))
    assert len(rows) == 3

    results = tmp_path / "results.csv"
    with results.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "status", "reference", "reason", "amount"])
        w.writerow([rows[0]["item_id"], "paid", "REF-1", "", rows[0]["amount"]])
        w.writerow([rows[1]["item_id"], "failed", "", "account closed", ""])
        w.writerow([rows[2]["item_id"], "paid", "REF-3", "", "1.00"])  # wrong amount
    code, out, err = await run_cli(database_url, "payouts", "import-results", str(results))
    assert code == 1 and "does not match" in err
    assert await session.scalar(text("SELECT count(*) FROM payout_item WHERE status <> 'reserved'")) == 0

    with results.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item_id", "status", "reference", "reason"])
        w.writerow([rows[0]["item_id"], "paid", "REF-1", ""])
        w.writerow([rows[1]["item_id"], "failed", "", "account closed"])
        w.writerow([rows[2]["item_id"], "paid", "REF-3", ""])
    code, out, err = await run_cli(database_url, "payouts", "import-results", str(results))
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert (
        report["applied"]["paid"] == 2
        and report["applied"]["failed"] == 1
        and report["status"] == "completed"
    )
    code, out, err = await run_cli(database_url, "payouts", "import-results", str(results))  # same file again
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["unchanged"] == 3

    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,status\nabc,paid\n7,lost\n")
    code, out, err = await run_cli(database_url, "payouts", "import-results", str(bad))
    assert code == 1 and "line 2" in err and "line 3" in err
