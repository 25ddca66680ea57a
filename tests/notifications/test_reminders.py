"""The rank downgrade warning, DISTNET_DOWNGRADE_WARNING_DAYS before the rank would be lost."""

from __future__ import annotations

import dataclasses

from sqlalchemy import text

from distnet.db import session_scope
from distnet.notifications.reminders import warn_downgrades
from tests.factories import auth, register
from tests.notifications.conftest import deliver_all, give_contact


async def test_warned_once_when_sales_that_keep_the_rank_drop_out_soon(
    client, admin_headers, sessionmaker, settings
):
    fading = await register(client, admin_headers, name="Fading")
    steady = await register(client, admin_headers, name="Steady")
    async with session_scope(sessionmaker) as s:
        await s.execute(
            text("UPDATE distributor SET rank = 'silver', locale = 'en' WHERE id IN (:a, :b)"),
            {"a": fading["id"], "b": steady["id"]},
        )
        # 1,000.00 personal keeps silver; the fading one's sales were 85 days ago (90-day period)
        await s.execute(
            text("""
            INSERT INTO sales_daily (distributor_id, day, personal, team) VALUES
              (:a, (now() AT TIME ZONE 'UTC')::date - 85, 100000, 0),
              (:b, (now() AT TIME ZONE 'UTC')::date - 10, 100000, 0)"""),
            {"a": fading["id"], "b": steady["id"]},
        )
    week = dataclasses.replace(
        settings, notify=dataclasses.replace(settings.notify, downgrade_warning_days=7)
    )
    async with session_scope(sessionmaker) as s:
        assert await warn_downgrades(s, week) == 1  # the inbox only: no verified contact
    async with session_scope(sessionmaker) as s:
        assert await warn_downgrades(s, week) == 0  # once per rank and week
    [notice] = (await client.get("/api/v1/me/notifications", headers=auth(fading))).json()["items"]
    assert notice["kind"] == "rank_downgrade_warning"
    assert "from silver to member" in notice["body"] and "1000.00 personal" in notice["body"]
    assert (await client.get("/api/v1/me/notifications", headers=auth(steady))).json()["items"] == []
    # with a 3-day horizon the 85-day-old sales still count: no warning
    async with session_scope(sessionmaker) as s:
        await s.execute(text("DELETE FROM notification"))
        short = dataclasses.replace(
            settings, notify=dataclasses.replace(settings.notify, downgrade_warning_days=3)
        )
        assert await warn_downgrades(s, short) == 0


async def test_the_warning_is_also_an_email(
    client, admin_headers, sessionmaker, notify_settings, smtp_server
):
    mailbox, _ = smtp_server
    fading = await register(client, admin_headers, name="Fading")
    await give_contact(sessionmaker, notify_settings, fading["id"], email="fading@example.com")
    async with session_scope(sessionmaker) as s:
        await s.execute(
            text("UPDATE distributor SET rank = 'silver', locale = 'en' WHERE id = :a"), {"a": fading["id"]}
        )
        await s.execute(
            text(
                "INSERT INTO sales_daily (distributor_id, day, personal, team) VALUES "
                "(:a, (now() AT TIME ZONE 'UTC')::date - 85, 100000, 0)"
            ),
            {"a": fading["id"]},
        )
    week = dataclasses.replace(
        notify_settings, notify=dataclasses.replace(notify_settings.notify, downgrade_warning_days=7)
    )
    async with session_scope(sessionmaker) as s:
        assert await warn_downgrades(s, week) == 2  # inbox and e-mail
    assert list((await deliver_all(sessionmaker, notify_settings)).values()) == ["sent"]
    [mail] = mailbox.to("fading@example.com")
    assert "from silver to member" in mail.get_content()
