"""Helpers for console tests: staff members made through the staff service, and sign-in over
plain HTTP (the browser tests sign in through the pages themselves)."""

from __future__ import annotations

import re
import time

import httpx
import pyotp

from distnet.kit.runner import run_in_session
from distnet.settings import Settings
from distnet.staff import service as staff_service

SECRET = re.compile(r'id="totp-secret">([A-Z2-7 ]+)<')
CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def make_staff(settings: Settings, name: str, *roles: str) -> str:
    """A person with one key holding ``roles``; returns the raw key."""

    async def go(session, _settings):
        staff = await staff_service.create_staff(session, name=name)
        _, raw = await staff_service.add_key(session, staff=staff, roles=list(roles))
        return raw

    return run_in_session(go, settings)


def add_key(settings: Settings, name: str, *roles: str) -> str:
    async def go(session, _settings):
        staff = await staff_service.find_staff(session, who=name)
        _, raw = await staff_service.add_key(session, staff=staff, roles=list(roles))
        return raw

    return run_in_session(go, settings)


def code_for(secret: str, *, ahead: int = 0) -> str:
    """The current TOTP code (``ahead`` steps later: a second sign-in within the same 30 s needs
    a code of a later step, since each code works once)."""
    return pyotp.TOTP(secret.replace(" ", "")).at(time.time() + 30 * ahead)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def make_staff_async(sessionmaker, name: str, *roles: str) -> str:
    async with sessionmaker() as session:
        staff = await staff_service.create_staff(session, name=name)
        _, raw = await staff_service.add_key(session, staff=staff, roles=list(roles))
        await session.commit()
    return raw


async def sign_in_client(client, key: str, *, ahead: int = 0, secret: str | None = None) -> str:
    """Sign an AsyncTestClient in (it keeps the cookie); returns the TOTP secret."""
    page = await client.get("/console/login")
    r = await client.post(
        "/console/login", data={"key": key, "_csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    page = await client.get("/console/login/code")
    found = SECRET.search(page.text)
    secret = found.group(1) if found else secret
    assert secret
    r = await client.post(
        "/console/login/code",
        data={"code": code_for(secret, ahead=ahead), "_csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return secret


def api(base: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
