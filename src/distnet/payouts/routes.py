from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit import idempotency
from distnet.kit.auth import Principal, Role
from distnet.kit.contract import CSV, XLSX, Page
from distnet.kit.errors import IdempotencyConflict, NotFound, ValidationFailed
from distnet.kit.http import roles
from distnet.kit.pagination import check_limit, decode_cursor, encode_cursor
from distnet.payout_accounts.schemas import PayoutMethod
from distnet.payouts import export, service
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
    PayoutItemView,
    PayoutResults,
    PayoutRunCreate,
    PayoutRunDetail,
    PayoutRunView,
    PayoutSkipPage,
    RepaymentCreate,
    RepaymentView,
    ResultsReport,
    SkipReason,
)
from distnet.settings import Settings

RunId = Annotated[int, Parameter(ge=1, le=2**62)]
DistributorId = Annotated[int, Parameter(ge=1, le=2**62)]
IdempotencyKey = Annotated[str | None, Parameter(header="Idempotency-Key", min_length=1, max_length=200)]
Limit = Annotated[int | None, Parameter(ge=1, le=500)]
Cursor = Annotated[str | None, Parameter(max_length=200)]
RunStatus = Literal["draft", "approved", "exported", "completed", "cancelled"]
ItemStatus = Literal["reserved", "paid", "failed", "cancelled", "returned"]
READERS = (Role.finance, Role.finance_approver)
NewRun = Annotated[
    PayoutRunCreate | None,
    Body(
        examples=[
            Example(
                summary="Pay everyone with at least 100.00 available",
                value={"min_amount": "100.00", "note": "December, first run"},
            )
        ]
    ),
]
Results = Annotated[
    PayoutResults,
    Body(
        examples=[
            Example(
                summary="The bank's answer for two items",
                value={
                    "results": [
                        {"item_id": 101, "status": "paid", "reference": "CMB20261202-000187"},
                        {"item_id": 102, "status": "failed", "reason": "account closed"},
                    ]
                },
            )
        ]
    ),
]
REPLAY = {
    200: ResponseSpec(
        PayoutRunView,
        description="A replay (same Idempotency-Key and body): the first answer",
        generate_examples=False,
    )
}


def _after(cursor: str | None) -> int | None:
    keys = decode_cursor(cursor, 1)
    if keys is None:
        return None
    if not isinstance(keys[0], int) or isinstance(keys[0], bool):
        raise ValidationFailed("cursor is not valid", field="cursor")
    return keys[0]


class PayoutRunController(Controller):
    path = "/api/v1/payout-runs"
    tags = ["payouts"]

    @post(
        "",
        opt=roles(Role.finance, raises=[EmptyRun, IdempotencyConflict]),
        responses=REPLAY,
        summary="Create a draft run; its items reserve available balances",
    )
    async def create(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        idempotency_key: IdempotencyKey = None,
        data: NewRun = None,
    ) -> Response[PayoutRunView]:
        data = data or PayoutRunCreate()
        body = msgspec.to_builtins(data)
        replay = await idempotency.claim(session, "payout_runs.create", idempotency_key, body)
        if replay is not None:
            return Response(msgspec.convert(replay.response, PayoutRunView), status_code=replay.status_code)
        view = await service.create_run(
            session,
            settings=settings,
            principal=principal,
            min_amount=data.min_amount,
            note=data.note,
            currency=data.currency,
        )
        await idempotency.store(
            session, "payout_runs.create", idempotency_key, 201, msgspec.to_builtins(view)
        )
        return Response(view, status_code=201)

    @get("", opt=roles(*READERS), summary="Payout runs, newest first")
    async def list_runs(
        self,
        session: AsyncSession,
        limit: Limit = None,
        cursor: Cursor = None,
        status: RunStatus | None = None,
    ) -> Page[PayoutRunView]:
        limit = check_limit(limit)
        runs = await service.list_runs(session, limit=limit + 1, before=_after(cursor), status=status)
        more = len(runs) > limit
        runs = runs[:limit]
        return Page(
            items=[service.run_view(r) for r in runs],
            next_cursor=encode_cursor(runs[-1].id) if more else None,
        )

    @get(
        "/{run_id:int}",
        opt=roles(*READERS, raises=[PayoutRunNotFound]),
        summary="A run with its totals by item status and the skipped distributors by reason",
    )
    async def get_run(self, session: AsyncSession, run_id: RunId) -> PayoutRunDetail:
        return await service.run_detail(session, run_id=run_id)

    @get(
        "/{run_id:int}/items", opt=roles(*READERS, raises=[PayoutRunNotFound]), summary="A run's items by id"
    )
    async def items(
        self,
        session: AsyncSession,
        run_id: RunId,
        limit: Limit = None,
        cursor: Cursor = None,
        status: ItemStatus | None = None,
    ) -> Page[PayoutItemView]:
        limit = check_limit(limit)
        rows = await service.list_items(
            session, run_id=run_id, limit=limit + 1, after=_after(cursor), status=status
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(items=rows, next_cursor=encode_cursor(rows[-1].id) if more else None)

    @get(
        "/{run_id:int}/skipped",
        opt=roles(*READERS, raises=[PayoutRunNotFound]),
        summary="Distributors at or above the minimum who got no item, with the reasons",
    )
    async def skipped(
        self,
        session: AsyncSession,
        run_id: RunId,
        limit: Limit = None,
        cursor: Cursor = None,
        reason: SkipReason | None = None,
    ) -> PayoutSkipPage:
        limit = check_limit(limit)
        rows = await service.list_skipped(
            session, run_id=run_id, limit=limit + 1, after=_after(cursor), reason=reason
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return PayoutSkipPage(
            items=rows, next_cursor=encode_cursor(rows[-1].distributor_id) if more else None
        )

    @post(
        "/{run_id:int}/approve",
        opt=roles(
            Role.finance_approver,
            raises=[PayoutRunNotFound, FourEyesRequired, InvalidRunTransition, EmptyRun],
        ),
        status_code=200,
        summary="Four eyes: a finance approver who did not create the run approves it",
    )
    async def approve(self, session: AsyncSession, principal: Principal, run_id: RunId) -> PayoutRunView:
        return await service.approve_run(session, principal=principal, run_id=run_id)

    @post(
        "/{run_id:int}/cancel",
        opt=roles(Role.finance, raises=[PayoutRunNotFound, InvalidRunTransition]),
        status_code=200,
        summary="Cancel a draft run: reserved money goes back to available",
    )
    async def cancel(self, session: AsyncSession, principal: Principal, run_id: RunId) -> PayoutRunView:
        return await service.cancel_run(session, principal=principal, run_id=run_id)

    @get(
        "/{run_id:int}/export",
        opt=roles(Role.finance, raises=[PayoutRunNotFound, InvalidRunTransition], files=[CSV, XLSX]),
        media_type=CSV,
        summary="The bank file (CSV or XLSX), streamed; ?method= gives that channel's layout; audited",
    )
    async def export_file(
        self,
        session: AsyncSession,
        state: State,
        settings: Settings,
        principal: Principal,
        run_id: RunId,
        file_format: Annotated[Literal["csv", "xlsx"], Parameter(query="format")] = "csv",
        method: PayoutMethod | None = None,
    ) -> Stream:
        await service.start_export(
            session, principal=principal, run_id=run_id, fmt=file_format, method=method
        )
        # the transition is committed before the file is produced: a bank file never exists for
        # a run that does not say "exported"
        await session.commit()
        if file_format == "xlsx":
            content = export.xlsx_stream(
                state.sessionmaker, settings.secret_key, run_id, method, time_zone=settings.business.time_zone
            )
            media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        else:
            content = export.csv_stream(state.sessionmaker, settings.secret_key, run_id, method)
            media = "text/csv; charset=utf-8"
        name = f"payout-run-{run_id}" + (f"-{method}" if method else "")
        return Stream(
            content,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{name}.{file_format}"'},
        )

    @post(
        "/{run_id:int}/results",
        opt=roles(Role.finance, raises=[PayoutRunNotFound, InvalidRunTransition, ResultsRejected]),
        status_code=200,
        summary="Bank results: paid (with reference) or failed (with reason); all or nothing, idempotent",
    )
    async def results(
        self, session: AsyncSession, principal: Principal, run_id: RunId, data: Results
    ) -> ResultsReport:
        return await service.import_results(session, principal=principal, run_id=run_id, results=data.results)


class RepaymentController(Controller):
    path = "/api/v1/distributors"
    tags = ["payouts"]

    @post(
        "/{distributor_id:int}/repayments",
        opt=roles(Role.finance, raises=[NotFound, RepaymentConflict, RepaymentExceedsOwed]),
        responses={
            200: ResponseSpec(
                RepaymentView,
                generate_examples=False,
                description="A replay (same external_id, distributor and amount): the first",
            )
        },
        summary="Money received against what the distributor owes (idempotent by external_id)",
    )
    async def repay(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        distributor_id: DistributorId,
        data: RepaymentCreate,
    ) -> Response[RepaymentView]:
        view, created = await service.record_repayment(
            session,
            settings=settings,
            principal=principal,
            distributor_id=distributor_id,
            external_id=data.external_id,
            amount=data.amount,
        )
        return Response(view, status_code=201 if created else 200)
