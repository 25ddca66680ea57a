"""Payout runs (invariant 5): items reserve available balances in the transaction that creates
them; four-eyes approval; export; bank results applied once; drafts cancelled back to available.
Repayments of debt. Services take the session first and never commit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import any_, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.closure.service import reopen_after_return
from distnet.kit import audit, outbox, pg
from distnet.kit.auth import Principal
from distnet.kit.errors import NotFound
from distnet.kit.money import check_currency, format_amount, parse_amount
from distnet.ledger.postings import check_posted
from distnet.ledger.service import Posting, ensure_platform_accounts, post
from distnet.models import Distributor, PayoutItem, PayoutRun, Repayment
from distnet.models import PayoutSkip as PayoutSkipRow
from distnet.payouts import repository as repo
from distnet.payouts.errors import (
    EmptyRun,
    FourEyesRequired,
    InvalidRunTransition,
    PayoutRunNotFound,
    RepaymentConflict,
    RepaymentExceedsOwed,
    ResultsRejected,
)
from distnet.payouts.schemas import (
    AppliedResults,
    ItemStatusTotals,
    PayoutItemView,
    PayoutResult,
    PayoutRunDetail,
    PayoutRunView,
    PayoutSkip,
    RepaymentView,
    ResultsReport,
    SkippedTotal,
    SkipReason,
)
from distnet.payouts.state import PayoutRunStatus as S
from distnet.payouts.state import transition
from distnet.settings import Settings
from distnet.tax.service import effective_table, tax_month


async def _now(session: AsyncSession) -> datetime:
    return await session.scalar(repo.CLOCK)


def run_view(run: PayoutRun) -> PayoutRunView:
    return PayoutRunView(
        id=run.id,
        status=run.status,
        min_amount=format_amount(run.min_amount),
        currency=run.currency,
        note=run.note,
        cutoff=run.cutoff,
        item_count=run.item_count,
        total_amount=format_amount(run.total_amount),
        created_by=run.created_by,
        created_at=run.created_at,
        approved_by=run.approved_by,
        approved_at=run.approved_at,
        exported_at=run.exported_at,
        completed_at=run.completed_at,
        cancelled_at=run.cancelled_at,
    )


async def _skipped_by_reason(session: AsyncSession, *, run_id: int) -> list[SkippedTotal]:
    return [
        SkippedTotal(reason=r.reason, distributors=int(r.distributors), amount=format_amount(int(r.amount)))
        for r in await session.execute(repo.SKIPPED_BY_REASON, {"run": run_id})
    ]


async def get_run(session: AsyncSession, *, run_id: int, lock: bool = False) -> PayoutRun:
    stmt = select(PayoutRun).where(PayoutRun.id == run_id).execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    run = await session.scalar(stmt)
    if run is None:
        raise PayoutRunNotFound(f"no payout run {run_id}")
    return run


async def run_detail(session: AsyncSession, *, run_id: int) -> PayoutRunDetail:
    run = await get_run(session, run_id=run_id)
    rows = await session.execute(
        select(
            PayoutItem.status,
            func.count(),
            func.coalesce(func.sum(PayoutItem.amount), 0),
            func.coalesce(func.sum(PayoutItem.tax), 0),
        )
        .where(PayoutItem.run_id == run_id)
        .group_by(PayoutItem.status)
    )
    by_status = {
        s: ItemStatusTotals(
            count=n,
            amount=format_amount(int(a)),
            tax=format_amount(int(t)),
            net=format_amount(int(a) - int(t)),
        )
        for s, n, a, t in rows
    }
    return PayoutRunDetail(
        **msgspec.structs.asdict(run_view(run)),
        items_by_status=by_status,
        skipped=await _skipped_by_reason(session, run_id=run_id),
    )


async def create_run(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal,
    min_amount: str | None = None,
    note: str | None = None,
    currency: str | None = None,
) -> PayoutRunView:
    minimum = (
        parse_amount(min_amount, field="min_amount")
        if min_amount is not None
        else settings.business.payout_min_amount
    )
    currency = check_currency(currency, settings.business.default_currency)
    # one payout money move at a time: two runs created at once serialise here, and the second
    # one's statements (new snapshots under READ COMMITTED) see the first one's reservations
    await session.execute(repo.TAKE_PAYOUT_LOCK)
    # one run writes two postings per eligible distributor in one statement: let the ledger
    # trigger's sorts and hash aggregates over them stay in memory, and plan the run's statements
    # for their own values (transaction-local settings; kit.pg.bulk_settings)
    await session.execute(repo.RUN_SETTINGS)
    # the run row first (its items refer to it); its cutoff is provisional until the candidates
    # are locked, and nobody sees it before we commit
    run = PayoutRun(
        status=S.draft.value,
        min_amount=minimum,
        currency=currency,
        note=note,
        cutoff=await _now(session),
        created_by=principal.actor,
        created_by_key_id=principal.key_id,
    )
    session.add(run)
    await session.flush()
    month = tax_month(run.cutoff, settings.business.time_zone)
    # tax is withheld on payments in the platform's own currency (the tax table's amounts are yuan)
    table = (
        await effective_table(session, month=month)
        if currency == settings.business.default_currency
        else None
    )
    await ensure_platform_accounts(session, currency=currency)
    row = (
        await session.execute(
            repo.CREATE_ITEMS,
            {
                "run": run.id,
                "currency": currency,
                "min_amount": minimum,
                "skip_risk": settings.business.payout_skip_open_risk_case,
                "require_contact": settings.notify.require_verified_contact,
                "tax_rules": json.dumps(table.rules) if table else None,
                "tax_table_id": table.id if table else None,
                "tax_month": month,
                "tax_account": await session.scalar(repo.TAX_ACCOUNT, {"currency": currency}),
            },
        )
    ).one()
    check_posted(f"payout run {run.id}", row.lines, row.posted)
    if row.items == 0:
        skipped = [msgspec.to_builtins(s) for s in await _skipped_by_reason(session, run_id=run.id)]
        raise EmptyRun(
            f"no distributor can be paid: {row.skipped} at or above the minimum were skipped",
            extra={"skipped": skipped},
        )
    # The planner's row counts for ``commission`` are the ones from before the settlement that just
    # made these commissions available (autovacuum analyses it later): it expects one available
    # commission, and with that estimate it joins the 900k reserved commissions to the 900k links by
    # a nested loop, 8e11 comparisons (M: still running after 12 minutes). Hash joins do not depend
    # on the estimate; the setting is reset right after the statement.
    await session.execute(pg.NO_NESTED_LOOPS)
    linked = (await session.execute(repo.RESERVE_COMMISSIONS, {"run": run.id})).one()
    await session.execute(pg.NESTED_LOOPS_AGAIN)
    if linked.marked != linked.linked or linked.items != row.items or linked.total != row.total:
        # an item whose commissions do not add up to it would pay money no commission earned
        raise RuntimeError(
            f"payout run {run.id}: {row.items} items of {row.total} reserved {linked.linked} "
            f"commissions ({linked.marked} marked) of {linked.total} in {linked.items} items"
        )
    # the cutoff is read after the candidates are locked: any commission made available before
    # it is in the balance we reserve (settlement stamps available_at after taking the same locks)
    run.cutoff = await _now(session)
    run.item_count, run.total_amount = int(row.items), int(row.total)
    await session.flush()
    await audit.record(
        session,
        principal,
        "payout_run.created",
        "payout_run",
        run.id,
        after={
            "status": run.status,
            "items": run.item_count,
            "total": run.total_amount,
            "tax": int(row.tax),
            "skipped": int(row.skipped),
            "tax_month": month.isoformat(),
            "min_amount": minimum,
            "currency": currency,
        },
    )
    return run_view(run)


async def approve_run(session: AsyncSession, *, principal: Principal, run_id: int) -> PayoutRunView:
    run = await get_run(session, run_id=run_id, lock=True)
    if (
        run.status == S.approved
        and run.approved_by_key_id == principal.key_id
        and principal.key_id is not None
    ):
        return run_view(run)  # the same approver again: nothing to do
    if run.status == S.draft and (
        (principal.key_id is not None and principal.key_id == run.created_by_key_id)
        or principal.is_person(run.created_by)  # one person, any of their keys
    ):
        raise FourEyesRequired("you created this payout run; another finance approver must approve it")
    if run.status == S.draft and run.item_count == 0:
        raise EmptyRun(f"payout run {run.id} has no items; there is nothing to approve")
    before = transition(run, S.approved, await _now(session))
    run.approved_by, run.approved_by_key_id = principal.actor, principal.key_id
    await session.flush()
    await audit.record(
        session,
        principal,
        "payout_run.approved",
        "payout_run",
        run.id,
        before={"status": before.value},
        after={"status": run.status},
    )
    return run_view(run)


async def cancel_run(session: AsyncSession, *, principal: Principal, run_id: int) -> PayoutRunView:
    await session.execute(repo.TAKE_PAYOUT_LOCK)
    run = await get_run(session, run_id=run_id, lock=True)
    before = transition(run, S.cancelled, await _now(session))
    await session.execute(
        repo.LOCK_ITEM_ACCOUNTS, {"run": run.id, "ids": await _open_item_ids(session, run_id=run.id)}
    )
    row = (await session.execute(repo.CANCEL_ITEMS, {"run": run.id})).one()
    check_posted(f"payout run {run.id}: cancel", row.lines, row.posted)
    await session.flush()
    await audit.record(
        session,
        principal,
        "payout_run.cancelled",
        "payout_run",
        run.id,
        before={"status": before.value},
        after={"status": run.status, "items_released": row.items},
    )
    return run_view(run)


async def _open_item_ids(session: AsyncSession, *, run_id: int) -> list[int]:
    return list(
        await session.scalars(
            select(PayoutItem.id).where(PayoutItem.run_id == run_id, PayoutItem.status == "reserved")
        )
    )


async def start_export(
    session: AsyncSession, *, principal: Principal, run_id: int, fmt: str, method: str | None = None
) -> PayoutRun:
    """approved -> exported on the first export; every download (it holds full account numbers)
    is audited with who, when, format and method."""
    run = await get_run(session, run_id=run_id, lock=True)
    if run.status == S.approved:
        before = transition(run, S.exported, await _now(session))
        await session.flush()
        await audit.record(
            session,
            principal,
            "payout_run.exported",
            "payout_run",
            run.id,
            before={"status": before.value},
            after={"status": run.status, "format": fmt, "method": method or "all"},
        )
    elif run.status in (S.exported, S.completed):
        await audit.record(
            session,
            principal,
            "payout_run.export_downloaded",
            "payout_run",
            run.id,
            after={"status": run.status, "format": fmt, "method": method or "all"},
        )
    else:
        raise InvalidRunTransition(
            f"payout run {run.id} is {run.status}; only an approved run is exported",
            extra={"current_status": run.status},
        )
    return run


async def list_runs(
    session: AsyncSession, *, limit: int, before: int | None, status: str | None = None
) -> list[PayoutRun]:
    stmt = select(PayoutRun).order_by(PayoutRun.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(PayoutRun.id < before)
    if status is not None:
        stmt = stmt.where(PayoutRun.status == status)
    return list(await session.scalars(stmt))


async def list_items(
    session: AsyncSession, *, run_id: int, limit: int, after: int | None, status: str | None = None
) -> list[PayoutItemView]:
    await get_run(session, run_id=run_id)
    stmt = (
        select(PayoutItem, Distributor.code, Distributor.name)
        .join(Distributor, Distributor.id == PayoutItem.distributor_id)
        .where(PayoutItem.run_id == run_id)
        .order_by(PayoutItem.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(PayoutItem.id > after)
    if status is not None:
        stmt = stmt.where(PayoutItem.status == status)
    return [
        PayoutItemView(
            id=i.id,
            run_id=i.run_id,
            distributor_id=i.distributor_id,
            distributor_code=code,
            distributor_name=name,
            amount=format_amount(i.amount),
            gross=format_amount(i.amount),
            tax=format_amount(i.tax),
            net=format_amount(i.amount - i.tax),
            tax_month=i.tax_month,
            final_payout=i.final_payout,
            currency=i.currency,
            status=i.status,
            bank_reference=i.bank_reference,
            failure_reason=i.failure_reason,
            result_at=i.result_at,
            return_reference=i.return_reference,
            return_reason=i.return_reason,
            returned_at=i.returned_at,
        )
        for i, code, name in (await session.execute(stmt)).all()
    ]


async def list_skipped(
    session: AsyncSession, *, run_id: int, limit: int, after: int | None, reason: str | None = None
) -> list[PayoutSkip]:
    await get_run(session, run_id=run_id)
    stmt = (
        select(PayoutSkipRow, Distributor.code)
        .join(Distributor, Distributor.id == PayoutSkipRow.distributor_id)
        .where(PayoutSkipRow.run_id == run_id)
        .order_by(PayoutSkipRow.distributor_id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(PayoutSkipRow.distributor_id > after)
    if reason is not None:
        stmt = stmt.where(any_(PayoutSkipRow.reasons) == reason)
    return [
        PayoutSkip(
            distributor_id=sk.distributor_id,
            distributor_code=code,
            available=format_amount(sk.available),
            reasons=cast(list[SkipReason], list(sk.reasons)),
        )
        for sk, code in (await session.execute(stmt)).all()
    ]


# --------------------------------------------------------------------------- bank results


def _check_lines(results: Sequence[PayoutResult]) -> tuple[dict[int, PayoutResult], list[dict[str, Any]]]:
    problems: list[dict[str, Any]] = []
    by_item: dict[int, PayoutResult] = {}
    for n, r in enumerate(results, start=1):
        if r.status == "paid" and not (r.reference or "").strip():
            problems.append(
                {"line": n, "item_id": r.item_id, "problem": "a paid result needs the bank reference"}
            )
        if r.status == "failed" and not (r.reason or "").strip():
            problems.append({"line": n, "item_id": r.item_id, "problem": "a failed result needs a reason"})
        if r.status == "returned" and not ((r.reference or "").strip() and (r.reason or "").strip()):
            problems.append(
                {
                    "line": n,
                    "item_id": r.item_id,
                    "problem": "a returned result needs the bank's reference of the return and a reason",
                }
            )
        seen = by_item.get(r.item_id)
        if seen is not None and (seen.status, seen.reference, seen.amount) != (
            r.status,
            r.reference,
            r.amount,
        ):
            problems.append(
                {"line": n, "item_id": r.item_id, "problem": "the item appears twice with different results"}
            )
        by_item.setdefault(r.item_id, r)
    return by_item, problems


def _result_problem(item: PayoutItem, r: PayoutResult) -> str | None:
    """What stops result ``r`` on ``item``: None (apply it), ``"unchanged"`` (already applied), or
    the problem in words."""
    if item.status == "reserved":
        return (
            None
            if r.status in ("paid", "failed")
            else ("a returned result is for a paid item; one the bank never paid is reported failed")
        )
    if item.status == "paid" and r.status == "returned":
        return None
    if item.status == r.status and r.status == "failed":
        return "unchanged"
    if r.status == "paid" and item.status in ("paid", "returned") and item.bank_reference == r.reference:
        return "unchanged"  # the paid file again, also after the item came back
    if r.status == "returned" and item.status == "returned" and item.return_reference == r.reference:
        return "unchanged"
    return (
        f"the item is already {item.status}"
        + (f" (reference {item.bank_reference})" if item.bank_reference else "")
        + (f" (returned, reference {item.return_reference})" if item.return_reference else "")
        + f"; it cannot become {r.status}"
    )


async def _apply_returns(
    session: AsyncSession, *, principal: Principal, run_id: int, returns: Sequence[PayoutResult]
) -> dict[str, int]:
    """Bank returns (退票) of paid items: the money back to available, the tax given back, the
    item's commissions available again (``APPLY_RETURNS``); the payout account version paid to
    needs the owner's confirmation; a closed account whose final payout came back is closing again."""
    ids = [r.item_id for r in returns]
    await session.execute(repo.LOCK_RETURN_ACCOUNTS, {"run": run_id, "ids": ids})
    row = (
        await session.execute(
            repo.APPLY_RETURNS,
            {
                "run": run_id,
                "ids": ids,
                "refs": [(r.reference or "").strip() for r in returns],
                "reasons": [(r.reason or "").strip() for r in returns],
            },
        )
    ).one()
    check_posted(f"payout run {run_id}: returns", row.lines, row.posted)
    flagged: list[Any] = list(
        (await session.execute(repo.FLAG_RETURNED_ACCOUNTS, {"ids": list(row.payout_account_ids)})).all()
    )
    for distributor_id, version_id in flagged:
        await audit.record(
            session,
            principal,
            "payout_account.needs_confirmation",
            "distributor",
            distributor_id,
            after={"version_id": int(version_id), "why": "a payout to it was returned by the bank"},
        )
    reopened = await reopen_after_return(session, distributor_ids=[int(d) for d in row.distributor_ids])
    await audit.record(
        session,
        principal,
        "payout_run.returns_imported",
        "payout_run",
        run_id,
        after={
            "returned": int(row.returned),
            "items": ids,
            "gross": int(row.gross),
            "tax_reversed": int(row.tax),
            "payout_accounts_flagged": len(flagged),
            "closures_reopened": reopened,
        },
    )
    return {"returned": int(row.returned), "commissions_restored": int(row.commissions_restored)}


async def import_results(
    session: AsyncSession, *, principal: Principal, run_id: int, results: Sequence[PayoutResult]
) -> ResultsReport:
    """Apply bank results all or nothing: ``paid`` / ``failed`` for reserved items, ``returned``
    (退票) for paid ones. Items already final with the same result are left alone (a file imported
    twice changes nothing); anything inconsistent rejects the whole file with a report of every
    problem."""
    by_item, problems = _check_lines(results)
    # serialise with other imports of results (and run creation): the second of two parallel
    # imports of one file waits, then finds every item final and changes nothing
    await session.execute(repo.TAKE_PAYOUT_LOCK)
    run = await get_run(session, run_id=run_id, lock=True)
    if run.status not in (S.exported, S.completed):
        raise InvalidRunTransition(
            f"payout run {run.id} is {run.status}; results are imported after the bank file was exported",
            extra={"current_status": run.status},
        )
    items = {
        i.id: i
        for i in await session.scalars(
            select(PayoutItem)
            .where(PayoutItem.run_id == run.id, PayoutItem.id.in_(list(by_item)))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    unchanged = 0
    for item_id, r in by_item.items():
        item = items.get(item_id)
        if item is None:
            problems.append({"item_id": item_id, "problem": f"no item {item_id} in payout run {run.id}"})
            continue
        if r.amount is not None:
            try:
                amount = parse_amount(r.amount, field="amount")
            except Exception:
                amount = None
            if amount != item.amount - item.tax:  # the bank pays the net
                problems.append(
                    {
                        "item_id": item_id,
                        "problem": f"amount {r.amount} does not match the item's net "
                        f"{format_amount(item.amount - item.tax)}",
                    }
                )
                continue
        problem = _result_problem(item, r)
        if problem == "unchanged":
            unchanged += 1
        elif problem is not None:
            problems.append({"item_id": item_id, "problem": problem})
    if problems:
        raise ResultsRejected(
            f"{len(problems)} problem(s) in the results; nothing was applied",
            extra={"problems": problems[:1000], "problem_count": len(problems)},
        )
    todo = [r for i, r in by_item.items() if items[i].status == "reserved"]
    returns = [r for i, r in by_item.items() if items[i].status == "paid" and r.status == "returned"]
    applied = {"paid": 0, "failed": 0, "returned": 0, "commissions_paid": 0, "commissions_restored": 0}
    if todo:
        await session.execute(repo.LOCK_ITEM_ACCOUNTS, {"run": run.id, "ids": [r.item_id for r in todo]})
        row = (
            await session.execute(
                repo.APPLY_RESULTS,
                {
                    "ids": [r.item_id for r in todo],
                    "statuses": [r.status for r in todo],
                    "refs": [(r.reference or "").strip() or None for r in todo],
                    "reasons": [(r.reason or "").strip() or None for r in todo],
                    "run": run.id,
                },
            )
        ).one()
        check_posted(f"payout run {run.id}: results", row.lines, row.posted)
        applied |= {
            "paid": int(row.paid),
            "failed": int(row.failed),
            "commissions_paid": int(row.commissions_paid),
        }
        await audit.record(
            session,
            principal,
            "payout_run.results_imported",
            "payout_run",
            run.id,
            after={"paid": applied["paid"], "failed": applied["failed"]},
        )
    if returns:
        applied |= await _apply_returns(session, principal=principal, run_id=run.id, returns=returns)
    open_items = await session.scalar(
        select(func.count())
        .select_from(PayoutItem)
        .where(PayoutItem.run_id == run.id, PayoutItem.status == "reserved")
    )
    if run.status == S.exported and open_items == 0:
        before = transition(run, S.completed, await _now(session))
        await session.flush()
        await audit.record(
            session,
            principal,
            "payout_run.completed",
            "payout_run",
            run.id,
            before={"status": before.value},
            after={"status": run.status},
        )
    return ResultsReport(
        run_id=run.id,
        status=run.status,
        applied=AppliedResults(**applied),
        unchanged=unchanged,
        open_items=int(open_items or 0),
    )


# --------------------------------------------------------------------------- repayments


def repayment_view(r: Repayment, owed_after: int | None = None) -> RepaymentView:
    return RepaymentView(
        id=r.id,
        distributor_id=r.distributor_id,
        external_id=r.external_id,
        amount=format_amount(r.amount),
        created_at=r.created_at,
        created_by=r.created_by,
        owed_after=msgspec.UNSET if owed_after is None else format_amount(owed_after),
    )


async def record_repayment(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal,
    distributor_id: int,
    external_id: str,
    amount: str,
) -> tuple[RepaymentView, bool]:
    """Money received against debt: D.owed +n, repayment_clearing -n. Idempotent by external_id
    (returns ``created=False`` for a replay); more than owed is a 422."""
    minor = parse_amount(amount)
    currency = settings.business.default_currency
    if await session.get(Distributor, distributor_id) is None:
        raise NotFound(f"no distributor {distributor_id}")
    # the unique external_id makes a concurrent duplicate wait for the first, then see it
    new_id = await session.scalar(
        insert(Repayment)
        .values(
            distributor_id=distributor_id, external_id=external_id, amount=minor, created_by=principal.actor
        )
        .on_conflict_do_nothing(index_elements=["external_id"])
        .returning(Repayment.id)
    )
    if new_id is None:
        first = await session.scalar(select(Repayment).where(Repayment.external_id == external_id))
        assert first is not None
        if first.distributor_id != distributor_id or first.amount != minor:
            raise RepaymentConflict(
                f"external_id {external_id!r} was recorded for another distributor or amount"
            )
        return repayment_view(first), False
    owed_balance = await session.scalar(repo.LOCK_OWED, {"d": distributor_id, "c": currency})
    owed = -(owed_balance or 0)
    if minor > owed:
        raise RepaymentExceedsOwed(
            f"the distributor owes {format_amount(max(owed, 0))}; {format_amount(minor)} is more than that",
            extra={
                "owed": format_amount(max(owed, 0)),
                "errors": [{"field": "amount", "message": "more than owed"}],
            },
        )
    await post(
        session,
        kind="repayment",
        ref_type="repayment",
        ref_id=new_id,
        currency=currency,
        postings=[Posting("owed", minor, distributor_id), Posting("repayment_clearing", -minor)],
    )
    await session.execute(repo.SET_REPAYMENT_APPLIED, {"a": minor, "id": new_id})
    owed_after = owed - minor
    await outbox.emit(
        session,
        "repayment.received",
        {
            "distributor_id": distributor_id,
            "repayment_id": new_id,
            "external_id": external_id,
            "amount": minor,
            "currency": currency,
            "owed_after": owed_after,
        },
        distributor_id=distributor_id,
    )
    await audit.record(
        session,
        principal,
        "repayment.recorded",
        "distributor",
        distributor_id,
        before={"owed": owed},
        after={"owed": owed_after, "repayment_id": new_id, "amount": minor},
    )
    rep = await session.get(Repayment, new_id)
    assert rep is not None
    return repayment_view(rep, owed_after), True
