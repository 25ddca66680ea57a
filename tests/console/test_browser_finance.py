"""In a real browser: finance runs settlement, creates a payout run; the same person's approve is
refused on the page (four eyes, explained before the click); an approver approves and downloads the
XLSX; a results file with a wrong line is refused whole with every problem listed, the right one
completes the run; reports show with their downloads. Risk admin pages: rules, maintenance, scans."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from selenium.webdriver.common.by import By

from tests.console.support import api, make_staff
from tests.factories import RESIDENT_ID, card_number


def _wait_file(folder, suffix: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} downloaded into {folder}: {list(folder.iterdir())}")


def test_finance_four_eyes_export_and_results(console, live, settings, downloads, tmp_path):
    admin = api(live, make_staff(settings, "Ops", "admin"))
    root = admin.post("/api/v1/distributors", json={"name": "总店 Root"}).json()
    a = admin.post("/api/v1/distributors", json={"name": "王小明", "sponsor_code": root["code"]}).json()
    for d in (root, a):  # a first payout account has no cooling-off: the run can pay it at once
        r = admin.put(
            f"/api/v1/distributors/{d['id']}/payout-account",
            json={
                "method": "bank_card",
                "holder_name": d["name"],
                "account_number": card_number(d["id"]),
                "bank_name": "中国工商银行",
                "bank_branch": "北京分行",
                "resident_id": RESIDENT_ID,
            },
        )
        assert r.status_code in (200, 201), r.text
    long_ago = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    seller = api(live, a["api_key"])
    for n, amount in enumerate(("1000.00", "880.50")):
        r = seller.post(
            "/api/v1/orders",
            json={
                "external_id": f"fin-{n}",
                "card_number": a["card"]["number"],
                "amount": amount,
                "placed_at": long_ago,
            },
        )
        assert r.status_code == 201, r.text

    creator = make_staff(settings, "李娜", "finance", "finance_approver")
    console.sign_in(creator)
    console.open("/console/settlements")
    console.click("form[action='/console/settlements'] button")
    console.wait_text("#runs", "Run 1")
    console.check()
    console.shot("settlement")
    console.open("/console/payout-runs")
    console.fill("input[name=min_amount]", "1.00")
    console.fill("input[name=note]", "十一月 November")
    console.click("form[action='/console/payout-runs'] button")
    console.wait_for("#run-status")
    console.check()
    assert console.driver.find_element(By.ID, "run-status").text == "draft"
    run_url = console.driver.current_url
    run_id = int(run_url.rstrip("/").rsplit("/", 1)[1])
    assert "You created this run" in console.driver.find_element(By.ID, "four-eyes").text
    console.click("form[action$='/approve'] button")
    console.wait_text("#flash", "another finance approver")
    console.check()
    console.shot("four-eyes-refused")

    approver = make_staff(settings, "陈杰", "finance", "finance_approver")
    console.sign_in(approver)
    console.open(f"/console/payout-runs/{run_id}")
    console.click("form[action$='/approve'] button")
    console.wait_text("#run-status", "approved")
    console.check()
    assert "by 陈杰" in console.text()
    console.click("form[action$='/export'] button[value=xlsx]")
    xlsx = _wait_file(downloads, ".xlsx")
    assert xlsx.read_bytes()[:2] == b"PK"  # a zip: the XLSX workbook
    console.open(f"/console/payout-runs/{run_id}")
    assert console.driver.find_element(By.ID, "run-status").text == "exported"

    items = api(live, approver).get(f"/api/v1/payout-runs/{run_id}/items").json()["items"]
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "item_id,status,reference,reason,amount\n"
        + "".join(f"{i['id']},paid,BK{i['id']},,{i['amount']}\n" for i in items)
        + "999999,paid,BKX,,1.00\n",
        encoding="utf-8",
    )
    console.driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(bad))
    console.click("form[action$='/results'] button")
    console.wait_text("#flash", "nothing was applied")
    console.check()
    assert "item id 999999: no item 999999" in console.text()
    console.shot("results-refused")
    good = tmp_path / "good.csv"
    good.write_text(
        "item_id,status,reference,reason,amount\n"
        + "".join(f"{i['id']},paid,BK{i['id']},,{i['amount']}\n" for i in items),
        encoding="utf-8",
    )
    console.driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(good))
    console.click("form[action$='/results'] button")
    console.wait_text("#run-status", "completed")
    console.check()
    console.shot("payout-run")
    console.open("/console/reports")
    assert "Trial balance" in console.text() and "Debt ageing" in console.text()
    console.shot("reports")
    # a finance user never sees the reviewers' pages or buttons
    assert not console.driver.find_elements(By.CSS_SELECTOR, "a[href='/console/appeals']")
    console.open("/console/appeals")
    assert "Not allowed" in console.text()


def test_risk_admin_rules_maintenance_and_scans(console, live, settings):
    admin = api(live, make_staff(settings, "Ops", "admin"))
    admin.post("/api/v1/distributors", json={"name": "华东 East", "region": "east"})
    admin.post("/api/v1/distributors", json={"name": "华北 North", "region": "north"})
    console.sign_in(make_staff(settings, "Risk Admin 赵", "risk_admin"))
    console.open("/console/rules")
    console.fill("#rule-order_velocity input[name='param.max_orders']", "-5")
    console.click("#rule-order_velocity form button")
    console.wait_text("#flash", "at least")
    console.check()
    console.fill("#rule-order_velocity input[name='param.max_orders']", "80")
    console.click("#rule-order_velocity form button")
    console.wait_text("#rule-order_velocity header", "version 2")
    console.check()
    assert "Risk Admin 赵" in console.text()  # the change history names the person
    console.shot("rules")

    console.open("/console/maintenance")
    start = datetime.now(UTC) + timedelta(days=2)
    for name, at in (("starts_at", start), ("ends_at", start + timedelta(hours=2))):
        el = console.driver.find_element(By.NAME, name)
        console.driver.execute_script("arguments[0].value = arguments[1]", el, at.strftime("%Y-%m-%dT%H:%M"))
    console.fill("input[name=regions]", "east")
    console.fill("textarea[name=message]", "系统维护 system upgrade")
    console.click("form[action='/console/maintenance'] button")
    console.wait_text("h1", "upcoming")
    console.check()
    assert "华东 East" in console.text() and "华北 North" not in console.text()
    console.shot("maintenance-window")
    console.click("form[action$='/cancel'] button")
    console.wait_text("h1", "cancelled")
    console.check()

    console.open("/console/scans")
    console.click("form[action='/console/scans'] button[type=submit]")
    console.wait_for("tr[id^=scan-]")
    console.check()
    console.shot("scans")
