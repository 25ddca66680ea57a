"""Holds: stacking (maintenance + manual + unpaid in every order of lift), and the money a violation
hold withholds: released on cleared, forfeited on confirmed, never both; all in the ledger."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from distnet.cards.service import active_holds, card_view, get_card
from distnet.kit.auth import SYSTEM
from distnet.risk import holds, maintenance
from distnet.risk.holds import MoneyAlreadyForfeited

NOW = datetime.now(UTC)


async def _status(net, d) -> str:
    return (await card_view(net.session, card=await get_card(net.session, number=d.card))).status


async def _three_holds(net, d):
    w = await maintenance.create_window(
        net.session,
        SYSTEM,
        starts_at=NOW - timedelta(minutes=1),
        ends_at=NOW + timedelta(hours=1),
        scope=None,
        message="upgrade",
        emergency=True,
        emergency_reason="database failover",
    )
    maint = await net.session.scalar(
        text("SELECT id FROM hold WHERE maintenance_window_id = :w"), {"w": w.id}
    )
    manual = (await holds.place_manual_hold(net.session, SYSTEM, d.card, reason="manual", note="check")).id
    unpaid = await holds.place_hold(
        net.session,
        SYSTEM,
        distributor_id=d.id,
        reason="unpaid_balance",
        source_type="rule",
        rule_name="unpaid_balance",
        rule_version=1,
        subject_key=f"debt:{d.id}:1",
    )
    return {"maintenance": maint, "manual": manual, "unpaid": unpaid}


@pytest.mark.parametrize("order", list(itertools.permutations(["maintenance", "manual", "unpaid"])))
async def test_holds_stack_and_lifting_one_never_lifts_another(net, order):
    d = await net.add()
    ids = await _three_holds(net, d)
    assert await _status(net, d) == "suspended"
    remaining = set(ids)
    for name in order:
        hold = await holds.get_hold(net.session, ids[name], lock=True)
        await holds.clear_hold(net.session, SYSTEM, hold, note=f"lift {name}")
        remaining.discard(name)
        active = {h.id for h in await active_holds(net.session, distributor_id=d.id)}
        assert active == {ids[n] for n in remaining}
        assert await _status(net, d) == ("suspended" if remaining else "active")


async def test_repeated_placement_is_one_hold(net):
    d = await net.add()
    kw = dict(
        distributor_id=d.id,
        reason="order_brushing",
        source_type="rule",
        rule_name="repeat_buyer",
        rule_version=1,
        subject_key="card:1:x",
    )
    first = await holds.place_hold(net.session, SYSTEM, **kw)
    assert first is not None
    assert await holds.place_hold(net.session, SYSTEM, **kw) is None
    assert len(await net.active_holds(d)) == 1
    # audited and announced once
    assert await net.session.scalar(text("SELECT count(*) FROM audit_log WHERE action = 'hold.placed'")) == 1
    payload = await net.session.scalar(text("SELECT payload FROM outbox_event WHERE topic = 'hold.placed'"))
    assert payload["reason"] == "order_brushing" and "appeals" in payload["how_to_appeal"]


async def test_cleared_releases_withheld_to_pending_in_the_ledger(net):
    d = await net.add()
    hold_id = (await holds.place_manual_hold(net.session, SYSTEM, d.card, reason="manual", note=None)).id
    c1 = await net.commission(d, 1234, hold_id=hold_id)
    c2 = await net.commission(d, 66, hold_id=hold_id)
    assert (await net.balances(d))["withheld"] == 1300
    await holds.lift_hold(net.session, SYSTEM, hold_id, outcome="cleared", note="ok", forfeit_after_days=14)
    bal = await net.balances(d)
    assert bal["withheld"] == 0 and bal["pending"] == 1300
    statuses = (
        (
            await net.session.execute(
                text("SELECT status FROM commission WHERE id IN (:a, :b)"), {"a": c1, "b": c2}
            )
        )
        .scalars()
        .all()
    )
    assert statuses == ["pending", "pending"]
    hold = await holds.get_hold(net.session, hold_id)
    assert hold.outcome == "cleared" and hold.money_settled_at is not None
    # never both: the forfeit job finds nothing
    assert await holds.forfeit_due(net.session, now=NOW + timedelta(days=100)) == 0
    assert (await net.balances(d))["pending"] == 1300


async def test_cleared_hands_money_to_another_active_violation_hold(net):
    d = await net.add()
    first = (await holds.place_manual_hold(net.session, SYSTEM, d.card, reason="manual", note=None)).id
    second = (
        await holds.place_manual_hold(net.session, SYSTEM, d.card, reason="order_brushing", note=None)
    ).id
    cid = await net.commission(d, 500, hold_id=first)
    await holds.lift_hold(net.session, SYSTEM, first, outcome="cleared", note=None, forfeit_after_days=14)
    row = (
        await net.session.execute(
            text("SELECT status, withheld_hold_id FROM commission WHERE id = :c"), {"c": cid}
        )
    ).one()
    assert (row.status, row.withheld_hold_id) == ("withheld", second)
    assert (await net.balances(d))["withheld"] == 500
    await holds.lift_hold(net.session, SYSTEM, second, outcome="cleared", note=None, forfeit_after_days=14)
    assert (await net.balances(d))["pending"] == 500


async def test_confirmed_forfeits_only_after_the_appeal_window(net):
    d = await net.add()
    hold_id = (await holds.place_manual_hold(net.session, SYSTEM, d.card, reason="manual", note=None)).id
    await net.commission(d, 800, hold_id=hold_id)
    view = await holds.lift_hold(
        net.session, SYSTEM, hold_id, outcome="confirmed", note="fraud", forfeit_after_days=14
    )
    assert view.status == "lifted" and view.outcome == "confirmed"
    assert await holds.forfeit_due(net.session, now=NOW + timedelta(days=13)) == 0
    assert (await net.balances(d))["withheld"] == 800
    assert await holds.forfeit_due(net.session, now=NOW + timedelta(days=15)) == 1
    assert (await net.balances(d))["withheld"] == 0
    income = await net.session.scalar(
        text("SELECT balance FROM ledger_account WHERE kind = 'forfeited_income' AND distributor_id IS NULL")
    )
    assert income == 800
    # exactly once
    assert await holds.forfeit_due(net.session, now=NOW + timedelta(days=16)) == 0
    hold = await holds.get_hold(net.session, hold_id)
    with pytest.raises(MoneyAlreadyForfeited):
        await holds.clear_hold(net.session, SYSTEM, hold, note="too late")


async def test_open_appeal_postpones_forfeiture(net):
    d = await net.add()
    hold_id = (await holds.place_manual_hold(net.session, SYSTEM, d.card, reason="manual", note=None)).id
    await net.commission(d, 300, hold_id=hold_id)
    await holds.lift_hold(net.session, SYSTEM, hold_id, outcome="confirmed", note=None, forfeit_after_days=0)
    await net.session.execute(
        text("INSERT INTO appeal (hold_id, distributor_id, statement, due_at) VALUES (:h, :d, 'x', now())"),
        {"h": hold_id, "d": d.id},
    )
    assert await holds.forfeit_due(net.session, now=NOW + timedelta(days=1)) == 0
    assert (await net.balances(d))["withheld"] == 300


async def test_lifting_twice_is_a_conflict_and_maintenance_cannot_be_confirmed(net):
    d = await net.add()
    ids = await _three_holds(net, d)
    await holds.lift_hold(
        net.session, SYSTEM, ids["manual"], outcome="cleared", note=None, forfeit_after_days=14
    )
    from distnet.kit.errors import ValidationFailed
    from distnet.risk.errors import HoldAlreadyLifted

    with pytest.raises(HoldAlreadyLifted):
        await holds.lift_hold(
            net.session, SYSTEM, ids["manual"], outcome="cleared", note=None, forfeit_after_days=1
        )
    with pytest.raises(ValidationFailed):
        await holds.lift_hold(
            net.session, SYSTEM, ids["maintenance"], outcome="confirmed", note=None, forfeit_after_days=1
        )
