"""Outbox consumers that turn domain events into notices (registered in events/registry.py).

Each runs in the dispatcher's transaction with its ``processed_event`` row, and the notice rows
are unique per (event, recipient, channel): a redelivered event notifies nobody twice.

Topics: ``hold.placed`` / ``hold.lifted`` (violation holds; maintenance has its own notices),
``appeal.updated`` (info requested, decided), ``maintenance.announced`` / ``maintenance.started``
(the distributors the window's holds cover, one INSERT … SELECT), ``payout.paid`` /
``payout.failed`` / ``payout.returned``, ``debt.created``, ``repayment.received``, ``rank.changed`` (up or down),
``payout_account.changed`` (finance emits it with ``distributor_id``; optional payload
``account_masked``; also sent to the contacts replaced within ``PREVIOUS_CONTACT_NOTICE_DAYS``) and ``distributor.closed``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.events.registry import on
from distnet.notifications import repository as repo
from distnet.notifications.service import notify, notify_many, notify_previous_contacts
from distnet.ranks.ladder import RANK_ORDER
from distnet.ranks.service import ladder_at


def _owner(event: dict[str, Any]) -> int | None:
    found = event.get("distributor_id") or event["payload"].get("distributor_id")
    return int(found) if found is not None else None


async def _notify(session: AsyncSession, event: dict[str, Any], kind: str, params: dict[str, Any]) -> None:
    owner = _owner(event)
    if owner is not None:
        await notify(session, distributor_id=owner, event_key=event["id"], kind=kind, params=params)


@on("hold.placed", consumer="notifications.hold_placed")
async def hold_placed(session: AsyncSession, event: dict[str, Any]) -> None:
    p = event["payload"]
    if p.get("reason") == "maintenance":
        return
    await _notify(
        session,
        event,
        "hold_placed",
        {
            "hold_id": p.get("hold_id"),
            "card_number": p.get("card_number"),
            "reason": p.get("reason"),
            "appealable": bool(p.get("appealable")),
            "rule": p.get("rule"),
        },
    )


@on("hold.lifted", consumer="notifications.hold_lifted")
async def hold_lifted(session: AsyncSession, event: dict[str, Any]) -> None:
    p = event["payload"]
    if p.get("reason") == "maintenance":
        return
    await _notify(
        session,
        event,
        "hold_lifted",
        {"hold_id": p.get("hold_id"), "reason": p.get("reason"), "outcome": p.get("outcome")},
    )


@on("appeal.updated", consumer="notifications.appeal_updated")
async def appeal_updated(session: AsyncSession, event: dict[str, Any]) -> None:
    p = event["payload"]
    action = p.get("action")
    if action not in ("request_info", "approve", "reject", "escalate"):
        return
    # the note of THIS step (events before appeal_event_id existed: the appeal's latest note)
    note = await session.scalar(
        repo.APPEAL_STEP_NOTE, {"a": p.get("appeal_id"), "e": p.get("appeal_event_id")}
    )
    params = {"appeal_id": p.get("appeal_id"), "hold_id": p.get("hold_id"), "note": note or "-"}
    if action == "request_info":
        await _notify(session, event, "appeal_info_requested", params)
    else:
        await _notify(session, event, "appeal_decided", {**params, "decision": p.get("status")})


async def _window_notice(session: AsyncSession, event: dict[str, Any], kind: str) -> None:
    p = event["payload"]
    # scope-matched: exactly the distributors the window suspends (its holds), in one statement
    await notify_many(
        session,
        recipients=repo.WINDOW_SCOPE,
        recipient_params={"window_id": p["id"]},
        event_key=event["id"],
        kind=kind,
        params={
            "window_id": p["id"],
            "starts_at": p.get("starts_at"),
            "ends_at": p.get("ends_at"),
            "message": p.get("message"),
        },
    )


@on("maintenance.announced", consumer="notifications.maintenance_announced")
async def maintenance_announced(session: AsyncSession, event: dict[str, Any]) -> None:
    await _window_notice(session, event, "maintenance_announced")


@on("maintenance.started", consumer="notifications.maintenance_started")
async def maintenance_started(session: AsyncSession, event: dict[str, Any]) -> None:
    await _window_notice(session, event, "maintenance_started")


@on("payout.paid", consumer="notifications.payout_paid")
async def payout_paid(session: AsyncSession, event: dict[str, Any]) -> None:
    p = event["payload"]
    await _notify(
        session,
        event,
        "payout_paid",
        {
            "amount": p.get("amount"),
            "currency": p.get("currency"),
            "reference": p.get("reference"),
            "run_id": p.get("run_id"),
        },
    )


@on("payout.failed", consumer="notifications.payout_failed")
async def payout_failed(session: AsyncSession, event: dict[str, Any]) -> None:
    p = event["payload"]
    await _notify(
        session,
        event,
        "payout_failed",
        {
            "amount": p.get("amount"),
            "currency": p.get("currency"),
            "reason": p.get("reason"),
            "run_id": p.get("run_id"),
        },
    )


@on("payout.returned", consumer="notifications.payout_returned")
async def payout_returned(session: AsyncSession, event: dict[str, Any]) -> None:
    p = event["payload"]
    await _notify(
        session,
        event,
        "payout_returned",
        {
            "amount": p.get("amount"),
            "currency": p.get("currency"),
            "reason": p.get("reason"),
            "run_id": p.get("run_id"),
            "reference": p.get("return_reference"),
            "distributor_id": p.get("distributor_id"),
        },
    )


@on("debt.created", consumer="notifications.debt_created")
async def debt_created(session: AsyncSession, event: dict[str, Any]) -> None:
    p = event["payload"]
    await _notify(
        session,
        event,
        "debt_created",
        {
            "amount": p.get("amount"),
            "currency": p.get("currency"),
            "reason": p.get("reason"),
            "order_id": p.get("order_id"),
        },
    )


@on("repayment.received", consumer="notifications.debt_repaid")
async def debt_repaid(session: AsyncSession, event: dict[str, Any]) -> None:
    p = event["payload"]
    await _notify(
        session,
        event,
        "debt_repaid",
        {"amount": p.get("amount"), "currency": p.get("currency"), "owed_after": p.get("owed_after")},
    )


@on("rank.changed", consumer="notifications.rank_changed")
async def rank_changed(session: AsyncSession, event: dict[str, Any]) -> None:
    p = event["payload"]
    old, new = p.get("from"), p.get("to")
    if old not in RANK_ORDER or new not in RANK_ORDER or old == new:
        return
    kind = "rank_up" if RANK_ORDER.index(new) > RANK_ORDER.index(old) else "rank_down"
    await _notify(
        session,
        event,
        kind,
        {"from_rank": old, "to": new, "period_days": (await ladder_at(session)).period_days},
    )


@on("payout_account.changed", consumer="notifications.payout_account_changed")
async def payout_account_changed(session: AsyncSession, event: dict[str, Any]) -> None:
    p = event["payload"]
    params = {"at": event.get("created_at"), "account": p.get("account_masked") or "-"}
    await _notify(session, event, "payout_account_changed", params)
    # the contacts replaced lately too: an attacker changes the e-mail first, then the account
    owner = _owner(event)
    if owner is not None:
        await notify_previous_contacts(
            session, distributor_id=owner, event_key=event["id"], kind="payout_account_changed", params=params
        )


@on("distributor.closed", consumer="notifications.account_closed")
async def account_closed(session: AsyncSession, event: dict[str, Any]) -> None:
    erase_after = await session.scalar(repo.ERASE_AFTER, {"d": _owner(event)})
    await _notify(session, event, "account_closed", {"erase_after": erase_after})
