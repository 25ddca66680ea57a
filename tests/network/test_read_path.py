"""The read path's one-statement views (issue 19) answer what the ORM-built ones did: a
distributor with its card and holds, /me with balances and rank progress, a card, the downline
with sales; and a hold placed or lifted shows on the very next read (no cache)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy import text

from distnet.cards import service as cards
from distnet.kit.auth import SYSTEM, Principal
from distnet.ledger.service import balances as ledger_balances
from distnet.ledger.statement import balances_view
from distnet.network import service
from distnet.ranks.service import rank_progress
from tests.factories import auth, register


async def _hold(session, distributor_id: int, reason: str, subject: str, **cols) -> int:
    extra_cols = "".join(f", {k}" for k in cols)
    extra_vals = "".join(f", :{k}" for k in cols)
    hold_id = await session.scalar(
        text(f"""
        INSERT INTO hold (distributor_id, card_id, reason, source_type, subject_key, rule_name, note{extra_cols})
        SELECT :d, id, :r, 'actor', :s, 'a rule', 'a note'{extra_vals} FROM card
         WHERE distributor_id = :d AND cancelled_at IS NULL RETURNING id"""),
        {"d": distributor_id, "r": reason, "s": subject, **cols},
    )
    await session.commit()
    return hold_id


async def _orm_me(session, distributor_id: int) -> dict:
    """/me as it was built before issue 19: the ORM distributor, card, holds, balances, progress."""
    d = await service.get_distributor(session, distributor_id=distributor_id)
    view = await service.profile(session, d=d)
    return msgspec.to_builtins(
        {
            **msgspec.structs.asdict(view),
            "balances": balances_view(await ledger_balances(session, distributor_id=d.id)),
            "rank_progress": await rank_progress(session, distributor_id=d.id, rank=d.rank),
        }
    )


async def test_one_statement_views_equal_the_orm_views(client, admin_headers, sessionmaker) -> None:
    root = await register(client, admin_headers, name="Root")
    member = await register(client, sponsor=root, name="Member")
    order = await client.post(
        "/api/v1/orders",
        headers=admin_headers,
        json={
            "external_id": "read-1",
            "source": "shop",
            "card_number": member["card"]["number"],
            "amount": "250.00",
        },
    )
    assert order.status_code == 201, order.text
    async with sessionmaker() as s:
        now = datetime.now(UTC)
        await _hold(s, member["id"], "manual", "a")
        await _hold(
            s,
            member["id"],
            "maintenance",
            "window:now",
            started_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=1),
        )
        await _hold(s, member["id"], "manual", "lifted", lifted_at=now)  # not active: not shown
    principal = SYSTEM
    async with sessionmaker() as s:
        for who in (root, member):
            d = await service.get_distributor(s, distributor_id=who["id"])
            orm = msgspec.to_builtins(await service.profile(s, d=d))
            assert (
                msgspec.to_builtins(
                    await service.distributor_view(s, principal=principal, distributor_id=who["id"])
                )
                == orm
            )
            card = await cards.visible_card(s, principal, who["card"]["number"])
            assert msgspec.to_builtins(
                await cards.card_for_view(s, principal=principal, number=who["card"]["number"])
            ) == msgspec.to_builtins(await cards.card_view(s, card=card))
            key_principal = Principal(0, "t", frozenset({"distributor"}), who["id"])
            assert msgspec.to_builtins(await service.me(s, principal=key_principal)) == await _orm_me(
                s, who["id"]
            )
    me = (await client.get("/api/v1/me", headers=auth(member))).json()
    assert me["card"]["status"] == "suspended" and len(me["card"]["holds"]) == 2
    assert me["rank_progress"]["personal_sales"] == "250.00"
    assert me["balances"]["pending"] != "0.00"
    page = (await client.get(f"/api/v1/distributors/{root['id']}/downline", headers=auth(root))).json()
    assert [(m["id"], m["sales"]) for m in page["items"]] == [(member["id"], "250.00")]


async def test_a_hold_shows_on_the_next_read_and_goes_when_lifted(
    client, admin_headers, sessionmaker
) -> None:
    member = await register(client, admin_headers, name="M")
    paths = (
        "/api/v1/me",
        f"/api/v1/distributors/{member['id']}",
        f"/api/v1/cards/{member['card']['number']}",
    )

    async def statuses() -> list[str]:
        answers = [(await client.get(p, headers=auth(member))).json() for p in paths]
        return [a["status"] if "holds" in a else a["card"]["status"] for a in answers]

    assert await statuses() == ["active"] * 3
    async with sessionmaker() as s:
        hold = await _hold(s, member["id"], "manual", "x")
    assert await statuses() == ["suspended"] * 3
    async with sessionmaker() as s:
        await s.execute(
            text("UPDATE hold SET lifted_at = now(), outcome = 'cleared' WHERE id = :i"), {"i": hold}
        )
        await s.commit()
    assert await statuses() == ["active"] * 3


async def test_downline_of_an_unknown_distributor_is_404_before_bad_input(client, admin_headers) -> None:
    admin = admin_headers
    assert (await client.get("/api/v1/distributors/999999/downline", headers=admin)).status_code == 404
    answer = await client.get(
        "/api/v1/distributors/999999/downline?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        headers=admin,
    )
    assert answer.status_code == 404  # as before: the distributor is looked up first
    root = await register(client, admin, name="R")
    answer = await client.get(
        f"/api/v1/distributors/{root['id']}/downline?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        headers=admin,
    )
    assert answer.status_code == 422
