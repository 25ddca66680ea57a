from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.conftest import bearer


async def manual_hold(client, make_key, d: dict[str, Any]) -> int:
    risk = bearer(await make_key("risk_admin", name="risk"))
    resp = await client.post(
        f"/api/v1/cards/{d['card']['number']}/holds", json={"reason": "manual", "note": "test"}, headers=risk
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


async def maintenance_hold(sessionmaker, d: dict[str, Any]) -> int:
    async with sessionmaker() as s:
        hold_id = await s.scalar(
            text(
                "INSERT INTO hold (distributor_id, card_id, reason, source_type, subject_key, ends_at, appealable) "
                "SELECT :d, c.id, 'maintenance', 'window', 'test', now() + interval '1 hour', false FROM card c "
                "WHERE c.distributor_id = :d RETURNING id"
            ),
            {"d": d["id"]},
        )
        await s.commit()
    return int(hold_id)


async def points_of(sessionmaker, d: dict[str, Any]) -> tuple[int, int]:
    async with sessionmaker() as s:
        rows = dict(
            (
                await s.execute(
                    text(
                        "SELECT kind, balance FROM ledger_account WHERE distributor_id = :d AND currency = 'PTS'"
                    ),
                    {"d": d["id"]},
                )
            ).all()
        )
    return int(rows.get("points", 0)), int(rows.get("points_owed", 0))
