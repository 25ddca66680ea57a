"""In a real browser: a case of a graph-shaped rule shows its evidence graph as an SVG drawn on
the server, with the flagged nodes; the reviewer holds the case and the card is suspended."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from tests.console.support import api, make_staff


def test_case_page_draws_the_evidence_graph_and_the_reviewer_holds(console, live, settings):
    admin = api(live, make_staff(settings, "Ops", "admin"))
    root = admin.post("/api/v1/distributors", json={"name": "刘备", "device_id": "phone-7"}).json()
    recruit = admin.post(
        "/api/v1/distributors", json={"name": "关羽", "sponsor_code": root["code"], "device_id": "phone-7"}
    ).json()
    other = admin.post("/api/v1/distributors", json={"name": "张飞", "sponsor_code": root["code"]}).json()
    risk_admin = api(live, make_staff(settings, "Risk Admin", "risk_admin"))
    scan = risk_admin.post("/api/v1/risk/scans", json={"rules": ["self_referral"]})
    assert scan.status_code == 201 and scan.json()["cases_opened"] == 1, scan.text

    console.sign_in(make_staff(settings, "Reviewer", "risk_reviewer"))
    console.open("/console/cases")
    assert "self referral" in console.text() and "关羽" in console.text()
    console.shot("cases")
    console.click("a[href^='/console/cases/']")
    console.wait_for("#evidence-graph svg")
    console.check()
    svg = console.driver.find_element(By.CSS_SELECTOR, "#evidence-graph svg")
    flagged = svg.find_elements(By.CSS_SELECTOR, "g.node.flagged")
    labels = {n.text for n in flagged}
    assert len(flagged) == 3, labels  # the recruit, the sponsor and the device they share
    assert (
        any("刘备" in t for t in labels)
        and any("关羽" in t for t in labels)
        and any("device" in t for t in labels)
    )
    assert "张飞" not in console.text()
    console.shot("case")
    console.fill("textarea[name=note]", "same phone as the sponsor")
    console.click("button[value=hold]")
    console.wait_text("h1", "actioned")
    console.check()
    console.open(f"/console/cards/{recruit['card']['number']}")
    assert console.driver.find_element(By.ID, "card-status").text == "suspended"
    console.open(f"/console/cards/{other['card']['number']}")
    assert console.driver.find_element(By.ID, "card-status").text == "active"
