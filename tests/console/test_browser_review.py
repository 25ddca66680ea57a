"""In a real browser (headless Chromium): an unauthenticated visit lands on the login page; a
reviewer signs in (TOTP enrolment), claims an appeal, requests information, the owner replies
through the API, the reviewer approves and the card page shows ``active``; a second reviewer
sees the claim refusal on the page. Every visited page is checked (no raw JSON, hash or key id)."""

from __future__ import annotations

from tests.console.support import api, make_staff


def test_unauthenticated_visit_lands_on_the_login_page(console):
    console.open("/console/appeals")
    assert console.driver.current_url.endswith("/console/login")
    assert "Sign in" in console.text()


def test_reviewer_claims_requests_info_and_approves(console, live, settings):
    admin = api(live, make_staff(settings, "运营 Ops", "admin"))
    root = admin.post("/api/v1/distributors", json={"name": "根 Root"}).json()
    owner = admin.post("/api/v1/distributors", json={"name": "张三", "sponsor_code": root["code"]}).json()
    card = owner["card"]["number"]
    risk_admin = api(live, make_staff(settings, "赵敏 (risk admin)", "risk_admin"))
    hold = risk_admin.post(
        f"/api/v1/cards/{card}/holds",
        json={"reason": "fake_promotion", "note": "shared device with the sponsor"},
    )
    assert hold.status_code == 201, hold.text
    me = api(live, owner["api_key"])
    appeal = me.post(
        "/api/v1/appeals",
        json={
            "hold_id": hold.json()["id"],
            "statement": "这是我自己的手机，我没有刷单。The device is mine.",
            "evidence": [
                "https://evil.example/receipt.jpg",
                {"name": "发票", "url": "https://evil.example/x.pdf"},
            ],
        },
    )
    assert appeal.status_code == 201, appeal.text
    appeal_id = appeal.json()["id"]

    reviewer_key = make_staff(settings, "王芳", "risk_reviewer")
    other_key = make_staff(settings, "李伟", "risk_reviewer")
    secret = console.sign_in(reviewer_key, shot=True)
    console.open("/console/appeals")
    assert "张三" in console.text() and "fake promotion" in console.text()
    console.shot("appeal-queue")
    console.click(f"a[href='/console/appeals/{appeal_id}']")
    console.wait_for("#decide")
    console.check()
    text = console.text()
    assert "这是我自己的手机" in text and "https://evil.example/receipt.jpg" in text  # attachments as text
    assert not console.driver.find_elements("css selector", "img[src*='evil'], iframe, a[href*='evil']")
    console.click("form[action$='/claim'] button")
    console.wait_text("#decide", "Request information")
    console.check()
    assert "王芳 (you)" in console.text()
    console.fill("textarea[name=note]", "请上传购买发票 (please upload the invoice)")
    console.click("button[value=request_info]")
    console.wait_text("h1", "info requested")
    console.check()

    reply = me.post(
        f"/api/v1/appeals/{appeal_id}/messages",
        json={"message": "发票已上传 invoice attached", "attachments": ["invoice-2026-11.pdf"]},
    )
    assert reply.status_code == 200, reply.text
    console.open(f"/console/appeals/{appeal_id}")
    assert "发票已上传" in console.text()
    console.click("form[action$='/claim'] button")
    console.wait_text("#decide", "Approve")
    console.check()

    # a second reviewer: the claim is refused, readably, on the page
    console.sign_in(other_key)
    console.open(f"/console/appeals/{appeal_id}")
    console.click("form[action$='/claim'] button")
    console.wait_text("#flash", "claimed by")
    console.check()
    assert "claimed by 王芳" in console.text()
    console.shot("claim-refused")

    # back to the first reviewer (a later code: each code works once), who approves
    console.sign_in(reviewer_key, secret=secret, ahead=1)
    console.open(f"/console/appeals/{appeal_id}")
    console.shot("appeal")
    console.fill("textarea[name=note]", "invoice matches; the device is the owner's")
    console.click("button[value=approve]")
    console.wait_text("h1", "approved")
    console.check()
    console.open(f"/console/cards/{card}")
    assert console.driver.find_element("id", "card-status").text == "active"
    assert "Past holds" in console.text() and "cleared" in console.text()
    console.shot("card")
    console.open(f"/console/holds?card={card}")
    assert "cleared" in console.text()
    console.shot("hold-search")
    # the audit names the person
    audit = admin.get(f"/api/v1/cards/{card}")
    assert audit.json()["status"] == "active"
