"""Console sign-in over HTTP: key then TOTP (enrolled on first sign-in), the session cookie's
flags, CSRF on every POST, idle expiry, sign-out, rate limiting, and the cookie never opening
the API. (The browser tests in test_browser_*.py walk the same pages in Chromium.)"""

from __future__ import annotations

from datetime import timedelta

import httpx
import psycopg

from tests.console.support import SECRET, code_for, csrf_of, make_staff

CONSOLE_PAGES = (
    "/console/",
    "/console/appeals",
    "/console/appeals/1",
    "/console/holds",
    "/console/cards/1",
    "/console/account",
)


def _sign_in(base: str, key: str, *, ahead: int = 0, secret: str | None = None) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=base, follow_redirects=False)
    page = c.get("/console/login")
    r = c.post("/console/login", data={"key": key, "_csrf": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/console/login/code", r.text
    page = c.get("/console/login/code")
    found = SECRET.search(page.text)
    secret = found.group(1) if found else secret
    assert secret, "no enrolment on first sign-in and no secret given"
    r = c.post(
        "/console/login/code", data={"code": code_for(secret, ahead=ahead), "_csrf": csrf_of(page.text)}
    )
    assert r.status_code == 303, r.text
    return c, secret


def _db(database_url: str) -> psycopg.Connection:
    return psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True)


def test_sign_in_enrols_totp_and_opens_a_session(live, settings, database_url):
    key = make_staff(settings, "Wang Fang", "risk_reviewer")
    c, secret = _sign_in(live, key)
    cookie = next(h for h in c.cookies.jar if h.name == "distnet_console")
    assert cookie.path == "/console" and cookie.has_nonstandard_attr("HttpOnly")
    page = c.get("/console/appeals")
    assert page.status_code == 200 and "Wang Fang" in page.text and "Appeal queue" in page.text
    # the cookie is for the console only: the API does not accept it
    api = httpx.get(f"{live}/api/v1/appeals", cookies={"distnet_console": cookie.value})
    assert api.status_code == 401
    # signed-in, audited by name
    with _db(database_url) as conn:
        actor, staff_id = conn.execute(
            "SELECT actor, actor_staff_id FROM audit_log WHERE action = 'staff.signed_in'"
        ).fetchone()
    assert actor.endswith(":Wang Fang") and staff_id is not None
    # second sign-in: no QR any more, the enrolled secret's code (a later step: each code works once)
    c2, _ = _sign_in(live, key, ahead=1, secret=secret)
    assert c2.get("/console/appeals").status_code == 200


def test_cookie_flags(live, settings):
    key = make_staff(settings, "Flags", "finance")
    c = httpx.Client(base_url=live)
    page = c.get("/console/login")
    r = c.post("/console/login", data={"key": key, "_csrf": csrf_of(page.text)}, follow_redirects=False)
    header = r.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "path=/console" in header
    assert "secure" not in header  # plain http on loopback; behind HTTPS (X-Forwarded-Proto) it is Secure
    r = c.post(
        "/console/login",
        data={"key": key, "_csrf": csrf_of(page.text)},
        follow_redirects=False,
        headers={"X-Forwarded-Proto": "https"},
    )
    assert "secure" in r.headers["set-cookie"].lower()


def test_browser_without_session_is_sent_to_login_never_json(live):
    for path in CONSOLE_PAGES:
        r = httpx.get(f"{live}{path}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/console/login", (path, r.status_code)
    r = httpx.get(f"{live}/console/appeals", headers={"HX-Request": "true"})
    assert r.headers["HX-Redirect"] == "/console/login"
    # an API key in the Authorization header does not open the console either
    r = httpx.get(
        f"{live}/console/appeals", headers={"Authorization": "Bearer dn_x_y"}, follow_redirects=False
    )
    assert r.status_code == 303
    r = httpx.get(f"{live}/console/nope")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")


def test_post_without_csrf_token_is_403(live, settings):
    key = make_staff(settings, "Csrf", "risk_reviewer")
    # before sign-in: the login form needs its token too
    r = httpx.post(f"{live}/console/login", data={"key": key}, follow_redirects=False)
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    c, _ = _sign_in(live, key)
    r = c.post("/console/appeals/1/claim", data={})
    assert r.status_code == 403 and "security token" in r.text
    r = c.post("/console/appeals/1/claim", data={"_csrf": "wrong"})
    assert r.status_code == 403
    r = c.post("/console/logout", data={})
    assert r.status_code == 403


def test_wrong_key_wrong_code_and_rate_limit(live, settings, database_url):
    c = httpx.Client(base_url=live)
    page = c.get("/console/login")
    token = csrf_of(page.text)
    r = c.post("/console/login", data={"key": "dn_bad_key", "_csrf": token})
    assert r.status_code == 401 and "unknown or revoked key" in r.text
    # a key that belongs to no person cannot sign in
    with _db(database_url) as conn:
        from distnet.kit.auth import hash_key, new_key

        raw, prefix = new_key()
        conn.execute(
            "INSERT INTO api_key (name, prefix, key_hash, roles) VALUES ('ops', %s, %s, ARRAY['admin'])",
            (prefix, hash_key(raw)),
        )
    r = c.post("/console/login", data={"key": raw, "_csrf": token})
    assert r.status_code == 401 and "no staff member" in r.text
    # a wrong code is refused and counted
    key = make_staff(settings, "Rate", "finance")
    r = c.post("/console/login", data={"key": key, "_csrf": token}, follow_redirects=False)
    page = c.get("/console/login/code")
    r = c.post("/console/login/code", data={"code": "000000", "_csrf": csrf_of(page.text)})
    assert r.status_code == 401 and "not right" in r.text
    # the limit: 10 failures from one address in 15 minutes, then 429 even with a good key
    for _ in range(8):
        c.post("/console/login", data={"key": "dn_bad_key", "_csrf": token})
    r = c.post("/console/login", data={"key": key, "_csrf": token})
    assert r.status_code == 429 and r.headers["retry-after"] == "900"


def test_idle_session_expires_and_sign_out_ends_it(live, settings, database_url):
    key = make_staff(settings, "Idle", "finance")
    c, _ = _sign_in(live, key)
    assert c.get("/console/account").status_code == 200
    with _db(database_url) as conn:
        conn.execute("UPDATE console_session SET last_seen_at = now() - %s", (timedelta(hours=8, minutes=1),))
    assert c.get("/console/account").status_code == 303
    with _db(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM console_session").fetchone()[0] == 0
    key2 = make_staff(settings, "Leaves", "finance")
    c, _ = _sign_in(live, key2)
    page = c.get("/console/account")
    r = c.post("/console/logout", data={"_csrf": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert c.get("/console/account").status_code == 303


def test_revoked_key_or_disabled_person_ends_the_session(live, settings, database_url):
    key = make_staff(settings, "Leaver", "risk_reviewer")
    c, _ = _sign_in(live, key)
    assert c.get("/console/appeals").status_code == 200
    with _db(database_url) as conn:
        conn.execute("UPDATE staff SET disabled_at = now() WHERE name = 'Leaver'")
    assert c.get("/console/appeals").status_code == 303
