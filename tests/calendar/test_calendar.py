"""The business calendar: working days from the week plus the year's table (holidays and make-up
working days, 调休) in the platform's time zone; sales days in that zone too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from distnet.calendar import service
from distnet.kit.errors import ValidationFailed
from distnet.kit.keys import SYSTEM
from tests.factories import register
from tests.orders.helpers import place

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_plain_weeks_count_monday_to_friday() -> None:
    friday = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert service.add_working_days(friday, 3, zone=SHANGHAI, overrides={}) == datetime(
        2026, 12, 2, 10, 0, tzinfo=UTC
    )
    monday = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert service.add_working_days(monday, 3, zone=SHANGHAI, overrides={}) == datetime(
        2026, 11, 26, 9, 0, tzinfo=UTC
    )


def test_the_day_is_the_platform_zones_day() -> None:
    # Friday 20:00 UTC is already Saturday 04:00 in Shanghai: one working day later is Monday 04:00
    # in Shanghai; counted in UTC it would be Monday 20:00 UTC (Tuesday 04:00 in Shanghai)
    late_friday = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
    assert service.add_working_days(late_friday, 1, zone=SHANGHAI, overrides={}) == datetime(
        2026, 11, 29, 20, 0, tzinfo=UTC
    )
    assert service.add_working_days(late_friday, 1, zone=ZoneInfo("UTC"), overrides={}) == datetime(
        2026, 11, 30, 20, 0, tzinfo=UTC
    )


async def test_spring_festival_2026_with_its_make_up_working_days(session) -> None:
    assert await service.load_year(session, principal=SYSTEM, table=service.builtin_year(2026)) == 39
    # Friday 13 Feb 2026, 10:00 in Shanghai: Saturday 14 Feb is a make-up working day (1), 15-23 Feb
    # are the holiday, Tuesday 24 (2), Wednesday 25 (3)
    start = datetime(2026, 2, 13, 10, 0, tzinfo=SHANGHAI)
    due = await service.working_days_after(session, start=start, days=3, zone=SHANGHAI)
    assert due == datetime(2026, 2, 25, 10, 0, tzinfo=SHANGHAI)
    # National Day: Sunday 20 Sep 2026 works; 1-7 Oct off; Saturday 10 Oct works
    assert await service.working_days_after(
        session, start=datetime(2026, 9, 19, 9, tzinfo=SHANGHAI), days=1, zone=SHANGHAI
    ) == datetime(2026, 9, 20, 9, tzinfo=SHANGHAI)
    assert await service.working_days_after(
        session, start=datetime(2026, 9, 30, 9, tzinfo=SHANGHAI), days=2, zone=SHANGHAI
    ) == datetime(2026, 10, 9, 9, tzinfo=SHANGHAI)
    audit = (await session.execute(text("SELECT action, subject_id FROM audit_log"))).all()
    assert audit == [("calendar.load", "2026")]


@pytest.mark.parametrize(
    ("days", "problem"),
    [
        ([{"day": "2026-03-02", "working": True, "name": "x"}], "only a weekend day"),
        ([{"day": "2027-01-01", "working": False, "name": "x"}], "is not in 2026"),
        (
            [
                {"day": "2026-05-01", "working": False, "name": "a"},
                {"day": "2026-05-01", "working": False, "name": "b"},
            ],
            "listed twice",
        ),
    ],
)
async def test_a_wrong_table_is_refused_whole(session, days, problem) -> None:
    table = service.parse_year(json.dumps({"year": 2026, "days": days}))
    with pytest.raises(ValidationFailed, match=problem):
        await service.load_year(session, principal=SYSTEM, table=table)
    assert (await session.execute(text("SELECT count(*) FROM business_day"))).scalar() == 0


def test_cli_loads_shows_and_refuses(database_url, redis_url, tmp_path) -> None:
    env = {**os.environ, "DISTNET_DATABASE_URL": database_url, "DISTNET_REDIS_URL": redis_url}

    def distnet(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "distnet", "calendar", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    loaded = distnet("load", "--builtin", "2026")
    assert loaded.returncode == 0 and loaded.stdout.startswith("2026: 39 days loaded"), loaded.stderr
    shown = distnet("show", "2026").stdout.splitlines()
    assert shown[0].startswith("2026-01-01 Thu  day off") and "2026-02-14 Sat  working" in "\n".join(shown)
    assert distnet("show", "2031").stdout.startswith("2031: no table loaded")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"year": 2027, "days": [{"day": "2027-03-03", "working": True, "name": "x"}]}))
    refused = distnet("load", str(bad))
    assert (
        refused.returncode == 1
        and "only a weekend day" in refused.stderr
        and "Traceback" not in refused.stderr
    )
    assert distnet("load", "--builtin", "2031").returncode == 1


async def test_sales_days_are_the_platform_zones_days(client, admin_headers, session) -> None:
    seller = await register(client, admin_headers, name="seller")
    # 17:00 UTC on 1 March is 01:00 on 2 March in Shanghai
    await place(client, seller, "10.00", placed_at="2026-03-01T17:00:00Z")
    days = (
        (
            await session.execute(
                text("SELECT day FROM sales_delta WHERE distributor_id = :d"), {"d": seller["id"]}
            )
        )
        .scalars()
        .all()
    )
    assert days == [date(2026, 3, 2)]


async def test_admin_replaces_a_years_table_through_the_api(client, admin_headers, make_key) -> None:
    reviewer = {"Authorization": f"Bearer {await make_key('risk_reviewer')}"}
    empty = await client.get("/api/v1/calendar/2031", headers=reviewer)
    assert empty.status_code == 200 and empty.json() == {"year": 2031, "days": []}
    table = {
        "source": "test notice",
        "days": [
            {"day": "2031-10-01", "working": False, "name": "国庆节"},
            {"day": "2031-09-28", "working": True, "name": "国庆节调休"},
        ],
    }
    assert (await client.put("/api/v1/calendar/2031", json=table, headers=reviewer)).status_code == 403
    put = await client.put("/api/v1/calendar/2031", json=table, headers=admin_headers)
    assert put.status_code == 200, put.text
    assert [(d["day"], d["working"]) for d in put.json()["days"]] == [
        ("2031-09-28", True),
        ("2031-10-01", False),
    ]
    # a weekday cannot be a make-up working day; a day of another year is refused: the table stays
    bad = {"days": [{"day": "2031-10-02", "working": True, "name": "x"}]}
    resp = await client.put("/api/v1/calendar/2031", json=bad, headers=admin_headers)
    assert resp.status_code == 422 and resp.json()["code"] == "validation-error"
    other = {"days": [{"day": "2032-01-01", "working": False, "name": "元旦"}]}
    assert (await client.put("/api/v1/calendar/2031", json=other, headers=admin_headers)).status_code == 422
    assert len((await client.get("/api/v1/calendar/2031", headers=reviewer)).json()["days"]) == 2
