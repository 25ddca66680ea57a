"""Every detector of API.md's rules table: a positive case, a near miss, and (where identifiers are
matched) the pruning of identifiers shared by very many distributors. Plus modes, the circuit
breaker, repeated scans and "a cleared finding is not raised again"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from distnet.kit.auth import SYSTEM
from distnet.ledger.service import Posting, ensure_platform_accounts, post
from distnet.risk import detectors, holds
from distnet.risk.rules import load_rule
from distnet.risk.scan import run_scan

NOW = datetime.now(UTC)


async def find(net, rule: str, **params):
    if params:
        await net.set_mode(rule, "review", **params)
    cfg = await load_rule(net.session, rule)
    return await detectors.DETECTORS[rule](net.session, cfg, detectors.ScanContext.alone(cfg))


# --------------------------------------------------------------------------- fake promotion


async def test_self_referral(net):
    root = await net.add(device_id="DEV-A", phone="13800000001")
    a = await net.add(root, device_id="dev-a")  # same device (normalised)
    b = await net.add(a)
    c = await net.add(b)
    far = await net.add(c, phone="13800000001")  # level 4 above it: beyond levels=3
    found = await find(net, "self_referral")
    assert [(f.evidence["recruit"], f.evidence["ancestor"], f.evidence["level"]) for f in found] == [
        (a.id, root.id, 1)
    ]
    assert found[0].evidence["shared_identifiers"][0]["kind"] == "device"
    assert set(found[0].hold_distributor_ids) == {a.id, root.id}
    assert far.id not in {f.evidence["recruit"] for f in found}
    # near miss turned positive by widening the levels
    wide = await find(net, "self_referral", levels=4)
    assert (far.id, root.id) in {(f.evidence["recruit"], f.evidence["ancestor"]) for f in wide}


async def test_self_referral_prunes_shared_identifiers(net):
    root = await net.add(device_id="SHOP-DEVICE")
    kid = await net.add(root, device_id="SHOP-DEVICE")
    for _ in range(3):
        await net.add(root, device_id="SHOP-DEVICE")
    assert len(await find(net, "self_referral", max_shared=10)) >= 1
    found = await find(net, "self_referral", max_shared=4)  # 5 share it: a shop device, pruned
    assert kid.id not in {f.evidence["recruit"] for f in found}


async def test_identity_cluster(net):
    root = await net.add()
    a = await net.add(root, phone="13900000001")
    b = await net.add(root, phone="13900000001", payment_fingerprint="PAY-1")
    c = await net.add(root, payment_fingerprint="PAY-1")
    lone = await net.add(root, phone="13900000002")
    pair_x = await net.add(root, device_id="X")
    pair_y = await net.add(root, device_id="X")  # only two: below min_size 3
    found = await find(net, "identity_cluster")
    assert [f.distributor_ids for f in found] == [tuple(sorted((a.id, b.id, c.id)))]
    ev = found[0].evidence
    assert {n["id"] for n in ev["graph"]["nodes"] if n["type"] == "distributor"} == {a.id, b.id, c.id}
    assert {s["kind"] for s in ev["shared_identifiers"]} == {"phone", "payment"}
    assert len(ev["graph"]["edges"]) == 4
    assert lone.id not in found[0].distributor_ids
    assert len(await find(net, "identity_cluster", min_size=2)) == 2
    assert pair_x.id != pair_y.id


async def test_identity_cluster_prunes_carrier_ip(net):
    root = await net.add()
    members = [await net.add(root, ip="10.0.0.1") for _ in range(6)]  # one carrier NAT address
    assert len(await find(net, "identity_cluster", max_shared=10)) == 1
    assert await find(net, "identity_cluster", max_shared=5) == []  # pruned: no giant cluster
    assert members


async def test_recruit_burst(net):
    sponsor = await net.add()
    burst = [await net.add(sponsor, joined_at=NOW - timedelta(minutes=50 - i)) for i in range(5)]
    found = await find(net, "recruit_burst", min_recruits=5)
    assert [f.hold_distributor_ids for f in found] == [(sponsor.id,)]
    assert found[0].evidence["recruits_in_window"] == 5 and found[0].evidence["recruits_with_sales"] == 0
    # near miss: two of the five sell (share 0.4 > 0.2)
    await net.order(burst[0])
    await net.order(burst[1])
    assert await find(net, "recruit_burst") == []


async def test_recruit_burst_near_miss_spread_out(net):
    sponsor = await net.add()
    for i in range(5):
        await net.add(sponsor, joined_at=NOW - timedelta(hours=5 * i))
    assert await find(net, "recruit_burst", min_recruits=5) == []


# --------------------------------------------------------------------------- order brushing


async def test_order_velocity(net):
    fast, slow, few = await net.add(), await net.add(), await net.add()
    for i in range(6):
        await net.order(fast, placed_at=NOW - timedelta(minutes=30 - i))
        await net.order(slow, placed_at=NOW - timedelta(hours=3 * i + 1))
    for i in range(5):
        await net.order(few, placed_at=NOW - timedelta(minutes=10 + i))
    found = await find(net, "order_velocity", max_orders=5)
    assert [f.card_ids for f in found] == [(fast.card_id,)]
    assert len(found[0].order_ids) == 6 and found[0].hold_distributor_ids == (fast.id,)


async def test_repeat_buyer_and_pruning(net):
    s1, s2 = await net.add(), await net.add()
    for _ in range(5):
        await net.order(s1, buyer="buyer-1")
    for _ in range(4):
        await net.order(s2, buyer="buyer-2")  # near miss: 4 < 5
    found = await find(net, "repeat_buyer")
    assert [(f.card_ids, f.evidence["fingerprint"]["kind"]) for f in found] == [((s1.card_id,), "buyer_ref")]
    # a device seen on many cards' orders (a shop terminal) is pruned
    shop = [await net.add() for _ in range(3)]
    for _ in range(5):
        await net.order(s2, device="TERMINAL")
    for s in shop:
        await net.order(s, device="TERMINAL")
    kinds = {
        (f.card_ids, f.evidence["fingerprint"]["kind"]) for f in await find(net, "repeat_buyer", max_shared=3)
    }
    assert ((s2.card_id,), "device") not in kinds
    kinds = {
        (f.card_ids, f.evidence["fingerprint"]["kind"]) for f in await find(net, "repeat_buyer", max_shared=4)
    }
    assert ((s2.card_id,), "device") in kinds


async def test_self_purchase(net):
    top = await net.add(payment_fingerprint="TOP-PAY")
    mid = await net.add(top)
    seller = await net.add(mid, device_id="SELLER-DEV")
    stranger = await net.add(payment_fingerprint="OTHER")
    own = await net.order(seller, device="seller-dev")
    upline = await net.order(seller, payment="TOP-PAY")
    await net.order(seller, payment="OTHER")  # near miss: a distributor, but not in the upline
    found = {f.evidence["buyer_distributor"]: f for f in await find(net, "self_purchase")}
    assert set(found) == {seller.id, top.id}
    assert found[seller.id].order_ids == (own,) and found[seller.id].evidence["relation"] == "self"
    assert found[top.id].order_ids == (upline,) and found[top.id].evidence["relation"] == "upline_level_2"
    assert stranger.id not in found
    assert {f.evidence["buyer_distributor"] for f in await find(net, "self_purchase", levels=1)} == {
        seller.id
    }


async def test_self_purchase_prunes_shared_device(net):
    seller = await net.add(device_id="KIOSK")
    for _ in range(3):
        await net.add(device_id="KIOSK")
    await net.order(seller, device="KIOSK")
    assert len(await find(net, "self_purchase", max_shared=4)) == 1
    assert await find(net, "self_purchase", max_shared=3) == []


async def _ring(net, n: int, *, pay_prefix: str):
    ds = [await net.add(payment_fingerprint=f"{pay_prefix}{i}") for i in range(n)]
    for i in range(n):  # d_i buys from d_{i+1}
        await net.order(ds[(i + 1) % n], payment=f"{pay_prefix}{i}")
    return ds


async def test_circular_orders(net):
    ring = await _ring(net, 3, pay_prefix="R")
    big = await _ring(net, 5, pay_prefix="B")  # near miss: longer than max_cycle 4
    chain = [await net.add(payment_fingerprint=f"C{i}") for i in range(3)]
    await net.order(chain[1], payment="C0")
    await net.order(chain[2], payment="C1")  # near miss: no edge back
    found = await find(net, "circular_orders")
    assert [set(f.distributor_ids) for f in found] == [{d.id for d in ring}]
    ev = found[0].evidence
    assert len(ev["cycle"]) == 3 and len(ev["graph"]["edges"]) == 3 and len(found[0].order_ids) == 3
    assert all(e["order_ids"] for e in ev["graph"]["edges"])
    assert len(await find(net, "circular_orders", max_cycle=5)) == 2
    assert big


async def test_circular_orders_prunes_shared_payment(net):
    ring = await _ring(net, 2, pay_prefix="FAMILY")
    for _ in range(3):
        await net.add(payment_fingerprint="FAMILY0")  # a shared card reader: 4 distributors hold it
    assert len(await find(net, "circular_orders", max_shared=4)) == 1
    assert await find(net, "circular_orders", max_shared=3) == []
    assert ring


async def test_refund_ratio(net):
    bad, ok = await net.add(), await net.add()
    for i in range(10):
        await net.order(bad, amount=1000, refunded=1000 if i < 5 else 0)
        await net.order(ok, amount=1000, refunded=1000 if i < 4 else 0)  # near miss: 0.4
    found = await find(net, "refund_ratio")
    assert [f.card_ids for f in found] == [(bad.card_id,)]
    assert found[0].evidence["ratio"] == 0.5 and len(found[0].order_ids) == 5
    assert await find(net, "refund_ratio", min_orders=11) == []


async def test_buyer_concentration(net):
    brush, fine = await net.add(), await net.add()
    t = NOW - timedelta(hours=2)
    for i in range(3):
        await net.order(brush, buyer="B1", placed_at=t + timedelta(minutes=10 * i))
    for i, b in enumerate(["X", "X", "Y", "Y", "X"]):  # 5 orders / 2 buyers = 2.5 < 3
        await net.order(fine, buyer=b, placed_at=t + timedelta(minutes=5 * i))
    found = await find(net, "buyer_concentration")
    assert [f.card_ids for f in found] == [(brush.card_id,)]
    assert len(found[0].evidence["suspicious_buyers"]) == 1 and len(found[0].order_ids) == 3
    assert len(await find(net, "buyer_concentration", min_ratio=2.5)) == 2


async def _debt(net, d, amount: int, days_ago: float) -> None:
    """A clawback that made ``d`` owe ``amount``, ``days_ago`` days ago (postings are append-only,
    so the past posting is written as such, both lines in one statement)."""
    await ensure_platform_accounts(net.session)
    txn = await net.session.scalar(
        text(
            "INSERT INTO ledger_transaction (kind, created_at) VALUES ('clawback', now() - make_interval(secs => :s)) "
            "RETURNING id"
        ),
        {"s": days_ago * 86400},
    )
    await net.session.execute(
        text("""
        INSERT INTO ledger_posting (transaction_id, account_id, amount, created_at)
        SELECT :t, a.id, CASE WHEN a.kind = 'owed' THEN -:amt ELSE :amt END, now() - make_interval(secs => :s)
          FROM ledger_account a
         WHERE (a.distributor_id = :d AND a.kind = 'owed') OR (a.distributor_id IS NULL AND a.kind = 'commission_expense')
    """),
        {"t": txn, "amt": amount, "s": days_ago * 86400, "d": d.id},
    )


async def test_unpaid_balance_holds_and_lifts_itself(net):
    old, young, small = await net.add(), await net.add(), await net.add()
    await _debt(net, old, 6000, 8)
    await _debt(net, young, 6000, 6)  # near miss: inside the grace period
    await _debt(net, small, 4000, 30)  # near miss: below min_owed
    result = await run_scan(net.session, only=["unpaid_balance"])
    assert result.holds_placed == 1
    assert [h.reason for h in await net.active_holds(old)] == ["unpaid_balance"]
    assert await net.active_holds(young) == [] and await net.active_holds(small) == []
    # repaid: the next scan lifts it (cleared) and places nothing new
    await post(
        net.session,
        kind="repayment",
        postings=[Posting("owed", 6000, old.id), Posting("repayment_clearing", -6000)],
    )
    result = await run_scan(net.session, only=["unpaid_balance"])
    assert result.stats.debt_holds_lifted == 1 and result.holds_placed == 0
    assert await net.active_holds(old) == []
    outcome = await net.session.scalar(
        text("SELECT outcome FROM hold WHERE distributor_id = :d"), {"d": old.id}
    )
    assert outcome == "cleared"


# --------------------------------------------------------------------------- modes, breaker, dedupe


async def _velocity_cards(net, n: int):
    cards = [await net.add() for _ in range(n)]
    for d in cards:
        for i in range(3):
            await net.order(d, placed_at=NOW - timedelta(minutes=20 - i))
    return cards


async def test_modes_shadow_review_enforce(net):
    (d,) = await _velocity_cards(net, 1)
    await net.set_mode("order_velocity", "shadow", max_orders=2)
    assert (await run_scan(net.session, only=["order_velocity"])).cases_opened == 1
    case = (await net.session.execute(text("SELECT status, action, rule_version FROM risk_case"))).one()
    assert (case.status, case.action, case.rule_version) == ("recorded", "recorded", 2)
    assert await net.active_holds(d) == []
    await net.set_mode("order_velocity", "off")
    await net.session.execute(text("DELETE FROM risk_case"))
    assert "order_velocity" not in (await run_scan(net.session)).stats.rules
    await net.set_mode("order_velocity", "enforce")
    result = await run_scan(net.session, only=["order_velocity"])
    assert (result.cases_opened, result.holds_placed) == (1, 1)
    hold = (
        await net.session.execute(
            text("SELECT reason, rule_name, rule_version, risk_case_id, evidence FROM hold")
        )
    ).one()
    assert (hold.reason, hold.rule_name, hold.rule_version) == ("order_brushing", "order_velocity", 4)
    assert hold.evidence["orders_in_window"] == 3 and len(hold.evidence["order_ids"]) == 3


async def test_repeated_scans_never_duplicate_and_cleared_is_not_raised_again(net):
    (d,) = await _velocity_cards(net, 1)
    await net.set_mode("order_velocity", "enforce", max_orders=2)
    first = await run_scan(net.session, only=["order_velocity"])
    again = await run_scan(net.session, only=["order_velocity"])
    assert (first.cases_opened, first.holds_placed) == (1, 1)
    assert (again.cases_opened, again.holds_placed) == (0, 0)
    hold_id = (await net.active_holds(d))[0].id
    await holds.lift_hold(
        net.session, SYSTEM, hold_id, outcome="cleared", note="legit flash sale", forfeit_after_days=14
    )
    after = await run_scan(net.session, only=["order_velocity"])
    assert (after.cases_opened, after.holds_placed) == (0, 0)
    assert await net.active_holds(d) == []
    # new evidence (another burst of orders) is a new finding
    for i in range(3):
        await net.order(d, placed_at=NOW - timedelta(minutes=2 - i * 0.1))
    assert (await run_scan(net.session, only=["order_velocity"])).holds_placed == 1


async def test_circuit_breaker_sends_the_rest_to_review(net):
    await _velocity_cards(net, 3)
    await net.set_mode("order_velocity", "enforce", max_orders=2, max_holds_per_hour=2)
    result = await run_scan(net.session, only=["order_velocity"])
    assert (result.cases_opened, result.holds_placed) == (3, 2)
    actions = (await net.session.execute(text("SELECT action, status FROM risk_case ORDER BY id"))).all()
    assert sorted(a.action for a in actions) == ["hold", "hold", "review_breaker"]
    assert [a.status for a in actions if a.action == "review_breaker"] == ["open"]


async def test_scan_shares_buyer_matches_and_matches_the_detectors_alone(net):
    """self_purchase and circular_orders read the buyer-is-a-distributor matches once per scan;
    their findings are those of each detector run on its own, and the scan leaves nothing in the
    session's info and no work_mem change behind."""
    ring = await _ring(net, 3, pay_prefix="S")
    seller = await net.add(payment_fingerprint="OWN")
    await net.order(seller, payment="OWN")
    alone = {
        r: sorted(f.subject_key for f in await find(net, r)) for r in ("self_purchase", "circular_orders")
    }
    assert len(alone["self_purchase"]) == 1 and len(alone["circular_orders"]) == 1
    work_mem = await net.session.scalar(text("SHOW work_mem"))
    info = dict(net.session.info)
    result = await run_scan(net.session, only=["self_purchase", "circular_orders"])
    assert {r: s.findings for r, s in result.stats.rules.items()} == {
        "self_purchase": 1,
        "circular_orders": 1,
    }
    keys = (await net.session.execute(text("SELECT rule, subject_key FROM risk_case ORDER BY rule"))).all()
    assert {(k.rule, k.subject_key) for k in keys} == {(r, k) for r, ks in alone.items() for k in ks}
    assert net.session.info == info
    assert await net.session.scalar(text("SHOW work_mem")) == work_mem
    assert ring


async def test_scan_shares_the_window_counts_and_matches_the_detectors_alone(net):
    """order_velocity, repeat_buyer and buyer_concentration read one GROUPING SETS pass per window
    within a scan, at the least of their thresholds; each still finds exactly what it finds alone,
    also with different thresholds and windows (and self_referral / identity_cluster, which share
    the identifier set)."""
    rules = ("order_velocity", "repeat_buyer", "buyer_concentration", "self_referral", "identity_cluster")
    fast, repeat, brush, old = await net.add(), await net.add(), await net.add(), await net.add()
    for i in range(6):
        await net.order(fast, buyer=f"f{i}", placed_at=NOW - timedelta(minutes=30 - i))
    for i in range(3):
        await net.order(repeat, buyer="R", placed_at=NOW - timedelta(days=1 + i))
        await net.order(repeat, payment="RP", placed_at=NOW - timedelta(days=1 + i))
        await net.order(brush, buyer="B1", placed_at=NOW - timedelta(hours=2) + timedelta(minutes=10 * i))
        await net.order(
            old, buyer="OLD", placed_at=NOW - timedelta(days=10, minutes=10 * i)
        )  # 30-day window only
    sponsor = await net.add(device_id="DEV")
    await net.add(sponsor, device_id="DEV")
    for _ in range(3):
        await net.add(ip="10.0.0.9")
    await net.set_mode("order_velocity", "review", max_orders=5)
    await net.set_mode("repeat_buyer", "review", min_orders=3)
    await net.set_mode("buyer_concentration", "review", lookback_days=30)
    await net.set_mode("identity_cluster", "review", min_size=3)
    alone = {r: sorted(f.subject_key for f in await find(net, r)) for r in rules}
    assert all(alone.values()), alone
    assert any(k.startswith(f"card:{old.card_id}:") for k in alone["buyer_concentration"])
    result = await run_scan(net.session, only=list(rules))
    assert {r: s.findings for r, s in result.stats.rules.items()} == {r: len(k) for r, k in alone.items()}
    keys = (await net.session.execute(text("SELECT rule, subject_key FROM risk_case"))).all()
    assert {(k.rule, k.subject_key) for k in keys} == {(r, k) for r, ks in alone.items() for k in ks}
    # the same detectors given one ScanContext: one window pass per distinct window, kept there
    configs = {r: await load_rule(net.session, r) for r in rules}
    shared = detectors.ScanContext(configs=configs)
    together = {
        r: sorted(f.subject_key for f in await detectors.DETECTORS[r](net.session, cfg, shared))
        for r, cfg in configs.items()
    }
    assert together == alone
    assert set(shared.window_groups) == {
        configs["order_velocity"].params["lookback_days"],
        configs["repeat_buyer"].params["days"],
        30,
    }
    assert shared.shared_identifiers is not None and not shared.buyer_matches
