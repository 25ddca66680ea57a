"""The prune job: published outbox rows, processed-event markers and sent e-mail/SMS notices older
than their retention go, in batches; everything else stays."""

from __future__ import annotations

import dataclasses

from sqlalchemy import text

from distnet.events.housekeeping import prune
from distnet.settings import HousekeepingSettings
from distnet.worker import jobs
from tests.factories import register


async def _seed(session, distributor_id: int) -> None:
    # 7 published long ago, 2 published recently, 1 never published although old
    await session.execute(
        text("""
        INSERT INTO outbox_event (id, topic, payload, created_at, published_at)
        SELECT gen_random_uuid(), 'test.ping', '{}', now() - interval '30 days',
               CASE WHEN g <= 7 THEN now() - interval '20 days' WHEN g <= 9 THEN now() - interval '1 day' END
          FROM generate_series(1, 10) g""")
    )
    await session.execute(
        text("""
        INSERT INTO processed_event (consumer, event_id, processed_at)
        SELECT 'c', 'e' || g, CASE WHEN g <= 5 THEN now() - interval '8 days' ELSE now() END
          FROM generate_series(1, 8) g""")
    )
    rows = [  # channel, status, days since sent
        ("email", "sent", 100),
        ("sms", "sent", 200),
        ("email", "sent", 10),
        ("email", "failed", 100),
        ("email", "pending", None),
        ("inbox", "sent", 400),
    ]
    # replaced contacts: two past the 30-day notice window, one inside it
    await session.execute(
        text("""
        INSERT INTO previous_contact (distributor_id, channel, address_hash, replaced_at)
        SELECT :d, 'email', decode(md5(g::text), 'hex'), now() - make_interval(days => d)
          FROM unnest(ARRAY[40, 31, 5]) WITH ORDINALITY AS t(d, g)"""),
        {"d": distributor_id},
    )
    for i, (channel, status, days) in enumerate(rows):
        await session.execute(
            text("""
            INSERT INTO notification (distributor_id, event_key, kind, channel, status, sent_at)
            VALUES (:d, :key, 'test', :channel, :status, now() - make_interval(days => :days))"""),
            {"d": distributor_id, "key": f"k{i}", "channel": channel, "status": status, "days": days},
        )


async def test_prune_deletes_only_what_is_past_retention_in_batches(
    client, admin_headers, session, settings
) -> None:
    member = await register(client, admin_headers)
    await _seed(session, member["id"])
    await session.commit()

    deleted = await prune(session, settings, batch=2, max_batches=2)  # a run is bounded: 4 per table
    assert deleted == {"outbox_event": 4, "processed_event": 4, "notification": 2, "previous_contact": 2}
    deleted = await prune(session, settings, batch=2, max_batches=2)  # the next run finishes the backlog
    assert deleted == {"outbox_event": 3, "processed_event": 1, "notification": 0, "previous_contact": 0}
    await session.commit()

    outbox = (
        await session.execute(
            text("SELECT count(*) FILTER (WHERE published_at IS NULL), count(*) FROM outbox_event")
        )
    ).one()
    assert tuple(outbox) == (2, 4)  # the old unpublished one, the registration's, the two recent ones
    assert await session.scalar(text("SELECT count(*) FROM processed_event")) == 3
    kept = (await session.execute(text("SELECT channel, status FROM notification ORDER BY id"))).all()
    assert [tuple(r) for r in kept] == [
        ("email", "sent"),
        ("email", "failed"),
        ("email", "pending"),
        ("inbox", "sent"),
    ]
    replaced = await session.scalars(
        text("SELECT (now() - replaced_at) < interval '6 days' FROM previous_contact")
    )
    assert list(replaced) == [True]  # only the contact replaced 5 days ago is kept


async def test_retention_is_a_setting_and_the_job_runs_it(
    client, admin_headers, sessionmaker, settings
) -> None:
    member = await register(client, admin_headers)
    async with sessionmaker() as s:
        await _seed(s, member["id"])
        await s.commit()
    longer = dataclasses.replace(
        settings, housekeeping=HousekeepingSettings(event_retention_days=25, notification_retention_days=5)
    )
    assert jobs.jobs_by_name()["prune"].target == "distnet.events.housekeeping.prune"
    result = await jobs.run_job("prune", sessionmaker=sessionmaker, settings=longer)
    assert result == {"outbox_event": 0, "processed_event": 0, "notification": 3, "previous_contact": 2}
