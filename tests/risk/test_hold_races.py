"""A hold's withheld money is settled once and its record agrees (issue 13): once the money was
released or forfeited, a lift, appeal decision or forfeit that would move it again or flip the
outcome is refused with 409 naming the outcome the hold has. Each pair raced from separate
connections ends in one outcome, with the money moved exactly once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from distnet.db import session_scope
from distnet.risk import holds
from tests.factories import auth, register
from tests.orders.helpers import verify_ok
from tests.risk.conftest import D

WITHHELD = 1_000


@pytest.fixture
async def case(client, admin_headers, staff, session, net):
    """A manual hold (placed by r1) withholding 10.00, and an appeal of it claimed by r2."""
    root = await register(client, admin_headers, name="root")
    reg = await register(client, sponsor=root, name="seller")
    r1, r2 = await staff("risk_reviewer", name="r1"), await staff("risk_reviewer", name="r2")
    resp = await client.post(
        f"/api/v1/cards/{reg['card']['number']}/holds", json={"reason": "manual", "note": "n"}, headers=r1
    )
    assert resp.status_code == 201, resp.text
    hold_id = resp.json()["id"]
    card_id = await session.scalar(
        text("SELECT id FROM card WHERE number = :n"), {"n": reg["card"]["number"]}
    )
    d = D(reg["id"], reg["code"], reg["card"]["number"], card_id, reg["api_key"])
    await net.commission(d, WITHHELD, hold_id=hold_id)
    await session.commit()

    async def appeal() -> int:
        resp = await client.post(
            "/api/v1/appeals",
            json={"hold_id": hold_id, "statement": "not me", "evidence": []},
            headers=auth(reg),
        )
        assert resp.status_code == 201, resp.text
        appeal_id = resp.json()["id"]
        assert (await client.post(f"/api/v1/appeals/{appeal_id}/claim", headers=r2)).status_code == 200
        return appeal_id

    return {"hold_id": hold_id, "d": d, "r1": r1, "r2": r2, "appeal": appeal}


def _lift(client, case, outcome):
    return client.post(
        f"/api/v1/holds/{case['hold_id']}/lift", json={"outcome": outcome, "note": "n"}, headers=case["r1"]
    )


def _decide(client, case, appeal_id, decision):
    return client.post(
        f"/api/v1/appeals/{appeal_id}/decision", json={"decision": decision, "note": "n"}, headers=case["r2"]
    )


async def _final_submission(session, appeal_id):
    """Make the open appeal the last allowed submission: its rejection forfeits at once."""
    await session.execute(text("UPDATE appeal SET submission_no = 3 WHERE id = :a"), {"a": appeal_id})
    await session.commit()


async def _money(session, case) -> dict:
    """Where the hold's money went, and how many ledger transactions moved it."""
    await session.rollback()  # a fresh snapshot
    d = case["d"].id
    row = (
        await session.execute(
            text(
                """
        SELECT h.outcome, h.money_settled_at IS NOT NULL AS settled,
               (SELECT balance FROM ledger_account WHERE distributor_id = :d AND kind = 'withheld') AS withheld,
               (SELECT balance FROM ledger_account WHERE distributor_id = :d AND kind = 'pending') AS pending,
               (SELECT balance FROM ledger_account WHERE distributor_id IS NULL AND kind = 'forfeited_income')
                   AS forfeited,
               (SELECT count(*) FROM ledger_transaction WHERE ref_type = 'hold' AND ref_id = CAST(:h AS text)) AS moves,
               (SELECT array_agg(DISTINCT status) FROM commission WHERE beneficiary_id = :d) AS statuses
          FROM hold h WHERE h.id = :h
        """
            ),
            {"d": d, "h": case["hold_id"]},
        )
    ).one()
    return dict(row._mapping)


def _released(money) -> bool:
    return (
        money["outcome"] == "cleared"
        and money["settled"]
        and money["pending"] == WITHHELD
        and money["withheld"] == 0
        and not money["forfeited"]
        and money["moves"] == 1
        and money["statuses"] == ["pending"]
    )


def _forfeited(money) -> bool:
    return (
        money["outcome"] == "confirmed"
        and money["settled"]
        and money["forfeited"] == WITHHELD
        and money["withheld"] == 0
        and money["pending"] == 0
        and money["moves"] == 1
        and money["statuses"] == ["forfeited"]
    )


async def test_a_rejection_after_a_clearing_lift_is_refused_naming_the_outcome(
    client, case, session, admin_headers
):
    """The issue's defect: a final rejection flipped a hold lifted as cleared (money released) to
    confirmed."""
    appeal_id = await case["appeal"]()
    await _final_submission(session, appeal_id)
    assert (await _lift(client, case, "cleared")).status_code == 200
    resp = await _decide(client, case, appeal_id, "reject")
    assert resp.status_code == 409 and resp.json()["code"] == "hold-money-released", resp.text
    assert resp.json()["outcome"] == "cleared" and "cleared" in resp.json()["detail"]
    assert _released(await _money(session, case))
    # approving agrees with the outcome: the appeal closes and nothing moves again
    resp = await _decide(client, case, appeal_id, "approve")
    assert resp.status_code == 200 and resp.json()["status"] == "approved"
    assert _released(await _money(session, case))
    await verify_ok(client, admin_headers)


async def test_a_clearing_after_a_forfeit_is_refused_naming_the_outcome(client, case, session, admin_headers):
    appeal_id = await case["appeal"]()
    await _final_submission(session, appeal_id)
    assert (await _decide(client, case, appeal_id, "reject")).status_code == 200  # final: forfeited at once
    assert _forfeited(await _money(session, case))
    resp = await _lift(client, case, "cleared")
    assert resp.status_code == 409 and resp.json()["code"] == "hold-money-forfeited", resp.text
    assert resp.json()["outcome"] == "confirmed"
    resp = await _lift(client, case, "confirmed")  # the same outcome: the suspension ends, no money moves
    assert resp.status_code == 200 and resp.json()["outcome"] == "confirmed"
    assert _forfeited(await _money(session, case))
    await verify_ok(client, admin_headers)


async def test_race_clearing_lift_and_final_rejection(client, case, session, admin_headers):
    appeal_id = await case["appeal"]()
    await _final_submission(session, appeal_id)
    lift, reject = await asyncio.gather(
        _lift(client, case, "cleared"), _decide(client, case, appeal_id, "reject")
    )
    money = await _money(session, case)
    assert sorted([lift.status_code, reject.status_code]) == [200, 409], (lift.text, reject.text)
    if lift.status_code == 200:
        assert reject.json()["code"] == "hold-money-released" and _released(money), money
    else:
        assert lift.json()["code"] == "hold-money-forfeited" and _forfeited(money), money
    await verify_ok(client, admin_headers)


async def test_race_confirming_lift_and_approval(client, case, session, admin_headers):
    """A confirmed hold whose money is unsettled can still be cleared on appeal: whichever comes
    first, the hold ends cleared and its money released once."""
    appeal_id = await case["appeal"]()
    lift, approve = await asyncio.gather(
        _lift(client, case, "confirmed"), _decide(client, case, appeal_id, "approve")
    )
    assert approve.status_code == 200, approve.text
    assert lift.status_code == 200 or lift.json()["code"] == "hold-already-lifted", lift.text
    assert _released(await _money(session, case))
    await verify_ok(client, admin_headers)


async def test_race_forfeit_job_and_clearing_lift(client, case, session, sessionmaker, admin_headers):
    appeal_id = await case["appeal"]()
    assert (
        await _decide(client, case, appeal_id, "reject")
    ).status_code == 200  # confirmed, forfeit scheduled
    await session.execute(
        text("UPDATE hold SET forfeit_at = now() - interval '1 minute' WHERE id = :h"), {"h": case["hold_id"]}
    )
    await session.commit()

    async def forfeit_job() -> int:
        async with session_scope(sessionmaker) as s:
            return await holds.forfeit_due(s)

    forfeited, lift = await asyncio.gather(forfeit_job(), _lift(client, case, "cleared"))
    money = await _money(session, case)
    if lift.status_code == 200:
        assert forfeited == 0 and _released(money), money
    else:
        assert lift.status_code == 409 and lift.json()["code"] == "hold-money-forfeited", lift.text
        assert forfeited == 1 and _forfeited(money), money
    # whichever won, the other way is refused now
    other = await _lift(client, case, "confirmed" if lift.status_code == 200 else "cleared")
    assert other.status_code == 409
    await verify_ok(client, admin_headers)
