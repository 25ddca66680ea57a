"""The staff console's pages (server-rendered, HTMX for partial updates). Thin: every action is
the same service call as the API's, with the signed-in person as the principal."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.params import Parameter
from litestar.response import Redirect, Stream, Template
from litestar.static_files import create_static_files_router
from litestar_htmx import HTMXRequest
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.console import pictures, repository, signin, words
from distnet.console.errors import SignInRefused, SignInThrottled
from distnet.console.web import (
    STATIC,
    can,
    clear_session_cookie,
    client_of,
    console_error,
    console_guard,
    is_htmx,
    login_token,
    page,
    set_login_cookie,
    set_session_cookie,
    when_in,
    zone,
)
from distnet.kit.auth import Principal, Role
from distnet.kit.errors import NotFound, ValidationFailed
from distnet.kit.http import roles
from distnet.kit.money import format_amount
from distnet.models.network import RANKS
from distnet.payouts import commands as payout_commands
from distnet.payouts import export
from distnet.payouts import service as payouts
from distnet.reports import render
from distnet.reports import service as report_service
from distnet.reports.schemas import DebtAgeingRow, TrialBalanceRow
from distnet.risk import appeals, cases, holds, maintenance, scan
from distnet.risk import rules as risk_rules
from distnet.risk.rules import RULES
from distnet.settings import Settings
from distnet.settlement import service as settlement

Id = Annotated[int, Parameter(ge=1, le=2**62)]
Filter = Annotated[str | None, Parameter(max_length=64)]
RISK = roles(Role.risk_reviewer, Role.risk_admin)
ANONYMOUS = {"stage": "anonymous"}
SECOND_FACTOR = {"stage": "second_factor"}


async def form_of(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str)}


def back(to: str, request: Request | None = None) -> Response:
    """After an action: 303 to the page, or for an HTMX form a full-page load of it."""
    if request is not None and is_htmx(request):
        return Response("", status_code=200, headers={"HX-Redirect": to})
    return Redirect(to, status_code=303)


def field(obj: Any, name: str) -> Any:
    """A view's field whether the service returned a dict or a struct."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


class SignInController(Controller):
    path = "/"

    @get("/", opt={"roles": ()})
    async def home(self, request: Request) -> Response:
        for path, roles_ in (
            ("/console/appeals", (Role.risk_reviewer, Role.risk_admin)),
            ("/console/payout-runs", (Role.finance, Role.finance_approver)),
        ):
            if can(request, *roles_):
                return back(path)
        return back("/console/account")

    @get("/account")
    async def account(self, request: Request) -> Template:
        return page(request, "account.html", title="Your account")

    @get("/login", opt=ANONYMOUS)
    async def login_page(self, request: Request) -> Template:
        token, cookie = login_token(request)
        tpl = page(request, "login.html", title="Sign in", login_csrf=token, error=None)
        set_login_cookie(tpl, request, cookie)
        return tpl

    @post("/login", opt=ANONYMOUS, status_code=303)
    async def login(self, request: Request, session: AsyncSession, settings: Settings) -> Any:
        form = await form_of(request)
        try:
            token = await signin.begin(
                session, settings, raw_key=form.get("key", ""), client=client_of(request)
            )
        except (SignInRefused, SignInThrottled) as exc:  # the failed attempt is kept (committed)
            login_csrf, _ = login_token(request)
            tpl = page(
                request,
                "login.html",
                status_code=exc.status,
                title="Sign in",
                login_csrf=login_csrf,
                error=exc.message,
            )
            tpl.headers.update(exc.headers)
            return tpl
        response = back("/console/login/code")
        set_session_cookie(response, request, settings, token)
        return response

    @get("/login/code", opt=SECOND_FACTOR)
    async def code_page(self, request: Request, settings: Settings) -> Template:
        signed = request.state.console
        return page(
            request,
            "second_factor.html",
            title="Second factor",
            enrol=signin.enrolment(settings, signed),
            name=signed.staff.name,
            error=None,
        )

    @post("/login/code", opt=SECOND_FACTOR, status_code=303)
    async def code(self, request: Request, session: AsyncSession, settings: Settings) -> Any:
        signed = request.state.console
        form = await form_of(request)
        try:
            token = await signin.verify_code(
                session, settings, signed, code=form.get("code", ""), client=client_of(request)
            )
        except (SignInRefused, SignInThrottled) as exc:
            if exc.message.startswith("too many wrong codes"):
                refused = page(
                    request, "error.html", status_code=401, title="Sign-in refused", message=exc.message
                )
                clear_session_cookie(refused)
                return refused
            tpl = page(
                request,
                "second_factor.html",
                status_code=exc.status,
                title="Second factor",
                enrol=signin.enrolment(settings, signed),
                name=signed.staff.name,
                error=exc.message,
            )
            tpl.headers.update(exc.headers)
            return tpl
        response = back("/console/")
        set_session_cookie(response, request, settings, token)
        return response

    @post("/logout", status_code=303, opt={"roles": ()})
    async def logout(self, request: Request, session: AsyncSession) -> Response[Any]:
        await signin.sign_out(session, request.state.console)
        response = back("/console/login")
        clear_session_cookie(response)
        return response


class ReviewController(Controller):
    path = "/"
    opt = RISK

    @get("/appeals")
    async def appeal_queue(
        self,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        status: Filter = None,
        reason: Filter = None,
        mine: bool = False,
        overdue: bool = False,
    ) -> Template:
        queue = await appeals.queue(
            session,
            principal,
            status=status or None,
            reason=reason or None,
            assignee="me" if mine else None,
            limit=200,
            cursor=None,
        )
        items = [a for a in queue.items if not overdue or a.overdue]
        who = await repository.who_by_id(session, [a.distributor_id for a in items])
        ctx: dict[str, Any] = dict(
            title="Appeal queue",
            items=items,
            owners=who,
            statuses=list(appeals.AppealStatus),
            reasons=REASONS,
            f={"status": status or "", "reason": reason or "", "mine": mine, "overdue": overdue},
        )
        return page(request, "appeals.html", **ctx)

    @get("/appeals/{appeal_id:int}")
    async def appeal_page(
        self, request: Request, session: AsyncSession, principal: Principal, settings: Settings, appeal_id: Id
    ) -> Template:
        appeal = await appeals.appeal_for_view(session, principal, appeal_id)
        hold = await holds.get_hold(session, appeal.hold_id)
        owner_id = appeal.distributor_id
        who = await repository.who_by_id(session, [owner_id, *words.distributor_ids_in(hold.evidence)])
        hold_row = (await repository.search_holds(session, hold_id=hold.id))[0]
        orders, total = await repository.orders_by_id(
            session, (hold.evidence or {}).get("order_ids", []), limit=50
        )
        return page(
            request,
            "appeal.html",
            title=f"Appeal {appeal_id}",
            a=appeal,
            hold=hold_row,
            owner=who.get(owner_id),
            evidence=words.evidence_rows(hold.evidence, name=words.names(who), when=when_in(settings)),
            orders=orders,
            orders_total=total,
            mine=principal.is_person(appeal.assignee or None),
            decisions=DECISIONS,
        )

    @post("/appeals/{appeal_id:int}/claim", status_code=303)
    async def claim(
        self, request: Request, session: AsyncSession, principal: Principal, settings: Settings, appeal_id: Id
    ) -> Response:
        await appeals.claim(session, principal, settings.business, appeal_id)
        return back(f"/console/appeals/{appeal_id}", request)

    @post("/appeals/{appeal_id:int}/decision", status_code=303)
    async def decide(
        self, request: Request, session: AsyncSession, principal: Principal, settings: Settings, appeal_id: Id
    ) -> Response:
        form = await form_of(request)
        await appeals.decide(
            session,
            principal,
            settings.business,
            appeal_id,
            decision=form.get("decision", ""),
            note=form.get("note") or None,
        )
        return back(f"/console/appeals/{appeal_id}", request)

    @get("/holds")
    async def hold_search(
        self,
        request: Request,
        session: AsyncSession,
        card: Filter = None,
        distributor: Filter = None,
        reason: Filter = None,
        hold_state: Annotated[str | None, Parameter(query="state", max_length=16)] = None,
    ) -> Template:
        state = hold_state
        searched = bool(card or distributor or reason or state)
        rows = (
            await repository.search_holds(
                session,
                card=card or None,
                distributor=distributor or None,
                reason=reason or None,
                active={"active": True, "past": False}.get(state or ""),
            )
            if searched
            else []
        )
        return page(
            request,
            "holds.html",
            title="Holds and cards",
            rows=rows,
            searched=searched,
            reasons=REASONS,
            f={
                "card": card or "",
                "distributor": distributor or "",
                "reason": reason or "",
                "state": state or "",
            },
        )

    @get("/cards/{number:str}")
    async def card_page(
        self,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        number: Annotated[str, Parameter(min_length=1, max_length=24)],
    ) -> Template:
        from distnet.cards import service as cards

        card = await cards.card_for_view(session, principal=principal, number=number)
        owner = (await repository.who_by_id(session, [field(card, "distributor_id")])).get(
            field(card, "distributor_id")
        )
        hold_rows = await repository.search_holds(
            session, card=number, distributor=None, reason=None, active=None
        )
        orders = await repository.orders_of_card(session, number)
        return page(
            request,
            "card.html",
            title=f"Card {number}",
            card=card,
            owner=owner,
            active=[h for h in hold_rows if h.active],
            past=[h for h in hold_rows if not h.active],
            orders=orders,
            manual_reasons=holds.MANUAL_REASONS,
        )

    @post("/cards/{number:str}/holds", status_code=303)
    async def place_hold(
        self,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        number: Annotated[str, Parameter(min_length=1, max_length=24)],
    ) -> Response:
        form = await form_of(request)
        await holds.place_manual_hold(
            session, principal, number, reason=form.get("reason", "manual"), note=form.get("note") or None
        )
        return back(f"/console/cards/{number}", request)

    @post("/holds/{hold_id:int}/lift", status_code=303)
    async def lift(
        self, request: Request, session: AsyncSession, principal: Principal, settings: Settings, hold_id: Id
    ) -> Response:
        form = await form_of(request)
        view = await holds.lift_hold(
            session,
            principal,
            hold_id,
            outcome=form.get("outcome", ""),
            note=form.get("note") or None,
            forfeit_after_days=settings.business.forfeit_after_days,
        )
        return back(f"/console/cards/{view.card_number}", request)


class CaseController(Controller):
    path = "/cases"
    opt = RISK

    @get("")
    async def case_list(
        self, request: Request, session: AsyncSession, status: Filter = None, rule: Filter = None
    ) -> Template:
        found = await cases.list_cases(
            session, status=status or None, rule=rule or None, limit=200, cursor=None
        )
        items = found.items
        ids = [i for c in items for i in c.subject.distributor_ids[:3]]
        return page(
            request,
            "cases.html",
            title="Risk cases",
            items=items,
            owners=await repository.who_by_id(session, ids),
            statuses=cases.CASE_STATUSES,
            rules=sorted(RULES),
            f={"status": status or "", "rule": rule or ""},
        )

    @get("/{case_id:int}")
    async def case_page(
        self, request: Request, session: AsyncSession, settings: Settings, case_id: Id
    ) -> Template:
        case = cases.case_view(await cases.get_case(session, case_id))
        evidence = case.evidence or {}
        subject = case.subject
        graph = evidence.get("graph")
        who = await repository.who_by_id(
            session,
            [*subject.distributor_ids, *words.distributor_ids_in(evidence), *pictures.distributor_ids(graph)],
        )
        orders, total = await repository.orders_by_id(session, subject.order_ids, limit=100)
        svg = pictures.evidence_svg(graph, who)
        return page(
            request,
            "case.html",
            title=f"Case {case_id}",
            c=case,
            svg=svg,
            graph=graph,
            people=[who[i] for i in subject.distributor_ids if i in who],
            evidence=words.evidence_rows(evidence, name=words.names(who), when=when_in(settings)),
            orders=orders,
            orders_total=total,
        )

    @post("/{case_id:int}/decision", status_code=303)
    async def decide(
        self, request: Request, session: AsyncSession, principal: Principal, case_id: Id
    ) -> Response:
        form = await form_of(request)
        await cases.decide_case(
            session, principal, case_id, decision=form.get("decision", ""), note=form.get("note") or None
        )
        return back(f"/console/cases/{case_id}", request)


class RiskAdminController(Controller):
    path = "/"
    opt = roles(Role.risk_admin)

    @get("/rules")
    async def rule_list(self, request: Request, session: AsyncSession) -> Template:
        configs = await risk_rules.load_rules(session)
        by_rule: dict[str, list[Any]] = {}
        for p in await cases.precision(session):
            by_rule.setdefault(p.rule, []).append(p)
        return page(
            request,
            "rules.html",
            title="Risk rules",
            rules=[risk_rules.rule_view(c) for c in configs.values()],
            precision=by_rule,
            history=await repository.rule_history(session),
            modes=list(risk_rules.Mode),
        )

    @post("/rules/{name:str}", status_code=303)
    async def rule_update(
        self,
        request: Request,
        session: AsyncSession,
        principal: Principal,
        name: Annotated[str, Parameter(max_length=64)],
    ) -> Response:
        form = await form_of(request)
        spec = risk_rules.RULES.get(name)
        params: dict[str, Any] = {}
        for key, param in spec.params.items() if spec else ():
            if form.get(f"param.{key}", "") != "":
                params[key] = _typed(param.kind, form[f"param.{key}"], key)
        await risk_rules.update_rule(
            session, principal, name, mode=form.get("mode") or None, params=params or None
        )
        # a query, not only a fragment: the browser must load the page again
        return back(f"/console/rules?changed={name}#rule-{name}", request)

    @get("/maintenance")
    async def windows(self, request: Request, session: AsyncSession) -> Template:
        return page(
            request,
            "maintenance.html",
            title="Maintenance windows",
            windows=await maintenance.list_windows(session, limit=100),
            ranks=RANKS,
        )

    @post("/maintenance", status_code=303)
    async def announce(
        self, request: Request, session: AsyncSession, principal: Principal, settings: Settings
    ) -> Response:
        form = await form_of(request)
        tz = zone(settings)
        scope = {
            k: [v.strip() for v in form.get(k, "").split(",") if v.strip()] for k in ("regions", "ranks")
        }
        view = await maintenance.create_window(
            session,
            principal,
            starts_at=_local_time(form.get("starts_at", ""), tz, "starts_at"),
            ends_at=_local_time(form.get("ends_at", ""), tz, "ends_at"),
            scope={k: v for k, v in scope.items() if v} or None,
            message=form.get("message", ""),
        )
        return back(f"/console/maintenance/{view.id}", request)

    @get("/maintenance/{window_id:int}")
    async def window_page(self, request: Request, session: AsyncSession, window_id: Id) -> Template:
        window = maintenance.window_view(await maintenance.get_window(session, window_id))
        return page(
            request,
            "window.html",
            title=f"Maintenance window {window_id}",
            w=window,
            cards=await repository.search_holds(session, window_id=window_id, limit=500),
        )

    @post("/maintenance/{window_id:int}/cancel", status_code=303)
    async def cancel(
        self, request: Request, session: AsyncSession, principal: Principal, window_id: Id
    ) -> Response:
        await maintenance.cancel_window(session, principal, window_id)
        return back(f"/console/maintenance/{window_id}", request)

    @get("/scans")
    async def scans(self, request: Request, session: AsyncSession) -> Template:
        return page(
            request,
            "scans.html",
            title="Scans",
            scans=await repository.recent_scans(session),
            rules=sorted(risk_rules.RULES),
        )

    @post("/scans", status_code=303)
    async def run_scan(self, request: Request, session: AsyncSession, principal: Principal) -> Response:
        form = await request.form()
        only = [r for r in form.getall("rules", []) if isinstance(r, str) and r in risk_rules.RULES] or None
        result = await scan.run_scan(session, principal, only=only)
        return back(f"/console/scans?ran={result.id}#scan-{result.id}", request)


FINANCE_READERS = roles(Role.finance, Role.finance_approver)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class FinanceController(Controller):
    path = "/"
    opt = FINANCE_READERS

    @get("/settlements")
    async def settlements(self, request: Request, session: AsyncSession) -> Template:
        ids = await settlement.list_runs(session, limit=50, before=None)
        runs = [await settlement.run_view(session, run_id=i) for i in ids]
        running = any(field(r, "status") not in ("done", "completed", "finished") for r in runs)
        return page(request, "settlements.html", title="Settlement", runs=runs, running=running)

    @post("/settlements", status_code=303, opt=roles(Role.finance))
    async def settle(self, request: Request, state: State, principal: Principal) -> Response:
        # the job owns its transactions (one per partition), as in the API
        await settlement.settle(state.sessionmaker, as_of=None, partitions=None, triggered_by=principal.actor)
        return back("/console/settlements", request)

    @get("/payout-runs")
    async def payout_runs(self, request: Request, session: AsyncSession, settings: Settings) -> Template:
        runs = [payouts.run_view(r) for r in await payouts.list_runs(session, limit=100, before=None)]
        return page(
            request,
            "payout_runs.html",
            title="Payout runs",
            runs=runs,
            default_min=format_amount(settings.business.payout_min_amount),
        )

    @post("/payout-runs", status_code=303, opt=roles(Role.finance))
    async def create_run(
        self, request: Request, session: AsyncSession, settings: Settings, principal: Principal
    ) -> Response:
        form = await form_of(request)
        view = await payouts.create_run(
            session,
            settings=settings,
            principal=principal,
            min_amount=form.get("min_amount") or None,
            note=form.get("note") or None,
        )
        return back(f"/console/payout-runs/{view.id}", request)

    @get("/payout-runs/{run_id:int}")
    async def payout_run(
        self, request: Request, session: AsyncSession, principal: Principal, run_id: Id
    ) -> Template:
        run = await payouts.run_detail(session, run_id=run_id)
        items = await payouts.list_items(session, run_id=run_id, limit=200, after=None)
        return page(
            request,
            "payout_run.html",
            title=f"Payout run {run_id}",
            run=run,
            items=items,
            created_it=principal.is_person(run.created_by),
        )

    @post("/payout-runs/{run_id:int}/approve", status_code=303, opt=roles(Role.finance_approver))
    async def approve(
        self, request: Request, session: AsyncSession, principal: Principal, run_id: Id
    ) -> Response:
        await payouts.approve_run(session, principal=principal, run_id=run_id)
        return back(f"/console/payout-runs/{run_id}", request)

    @post("/payout-runs/{run_id:int}/cancel", status_code=303, opt=roles(Role.finance))
    async def cancel(
        self, request: Request, session: AsyncSession, principal: Principal, run_id: Id
    ) -> Response:
        await payouts.cancel_run(session, principal=principal, run_id=run_id)
        return back(f"/console/payout-runs/{run_id}", request)

    @post("/payout-runs/{run_id:int}/export", opt=roles(Role.finance), status_code=200)
    async def export(
        self,
        request: Request,
        session: AsyncSession,
        state: State,
        settings: Settings,
        principal: Principal,
        run_id: Id,
    ) -> Stream:
        fmt = "xlsx" if (await form_of(request)).get("format") == "xlsx" else "csv"
        await payouts.start_export(session, principal=principal, run_id=run_id, fmt=fmt)
        # as in the API: the run says "exported" (committed) before any bank file exists
        await session.commit()
        if fmt == "xlsx":
            content, media = export.xlsx_stream(state.sessionmaker, settings.secret_key, run_id), XLSX
        else:
            content, media = (
                export.csv_stream(state.sessionmaker, settings.secret_key, run_id),
                "text/csv; charset=utf-8",
            )
        return Stream(
            content,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="payout-run-{run_id}.{fmt}"'},
        )

    @post("/payout-runs/{run_id:int}/results", status_code=303, opt=roles(Role.finance))
    async def results(
        self, request: Request, session: AsyncSession, principal: Principal, run_id: Id
    ) -> Response:
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ValidationFailed("choose the bank's results file (CSV)", field="file")
        data = await upload.read()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / (Path(upload.filename or "results.csv").name or "results.csv")
            path.write_bytes(data)
            lines = payout_commands.read_results_csv(path)
        await payouts.import_results(session, principal=principal, run_id=run_id, results=lines)
        return back(f"/console/payout-runs/{run_id}", request)

    @get("/reports")
    async def reports(self, request: Request, session: AsyncSession, settings: Settings) -> Template:
        tb_summary, tb_rows = await report_service.trial_balance(session)
        ag_summary, ag_rows = await report_service.debt_ageing(
            session, as_of=datetime.now(UTC), currency=settings.business.default_currency
        )
        return page(
            request,
            "reports.html",
            title="Reports",
            tb=(tb_summary, report_service.TRIAL_COLUMNS, tb_rows),
            ageing=(ag_summary, report_service.AGEING_COLUMNS, ag_rows),
        )

    @get("/reports/{name:str}/download", opt=roles(Role.finance))
    async def report_file(
        self,
        session: AsyncSession,
        settings: Settings,
        name: Annotated[str, Parameter(max_length=32)],
        fmt: Annotated[str, Parameter(query="format", max_length=8)] = "xlsx",
    ) -> Any:
        if fmt not in ("csv", "xlsx"):
            raise ValidationFailed("csv or xlsx", field="format")
        row: type[Any]
        if name == "trial-balance":
            summary, rows = await report_service.trial_balance(session)
            title, columns, row = "Trial balance", report_service.TRIAL_COLUMNS, TrialBalanceRow
        elif name == "debt-ageing":
            summary, rows = await report_service.debt_ageing(
                session, as_of=datetime.now(UTC), currency=settings.business.default_currency
            )
            title, columns, row = "Debt ageing", report_service.AGEING_COLUMNS, DebtAgeingRow
        else:
            raise NotFound(f"no report {name!r}")
        return await render.respond(
            fmt, name=name, title=title, summary=summary, columns=columns, batches=render.once(rows), row=row
        )


def _typed(kind: str, raw: str, key: str) -> Any:
    try:
        return int(raw) if kind == "int" else float(raw) if kind == "float" else raw
    except ValueError as exc:
        raise ValidationFailed(
            f"{key.replace('_', ' ')} must be {'an integer' if kind == 'int' else 'a number'}",
            field=f"params.{key}",
        ) from exc


def _local_time(raw: str, tz: Any, name: str) -> datetime:
    """A ``datetime-local`` field, read in the platform's time zone."""
    try:
        at = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationFailed(f"{name.replace('_', ' ')} must be a date and time", field=name) from exc
    return at.replace(tzinfo=tz) if at.tzinfo is None else at


REASONS = ("fake_promotion", "order_brushing", "unpaid_balance", "maintenance", "manual")


DECISIONS = (
    ("request_info", "Request information"),
    ("approve", "Approve (clear the hold)"),
    ("reject", "Reject (confirm the hold)"),
    ("escalate", "Escalate to a risk admin"),
)


def console_router(controllers: list[type] | None = None) -> Router:
    static = create_static_files_router(
        path="/static",
        directories=[STATIC],
        opt={"stage": "public"},
        include_in_schema=False,
        send_as_attachment=False,
    )
    return Router(
        path="/console",
        route_handlers=[
            SignInController,
            ReviewController,
            CaseController,
            RiskAdminController,
            FinanceController,
            *(controllers or []),
            static,
        ],
        guards=[console_guard],
        opt={"console": True},
        include_in_schema=False,
        request_class=HTMXRequest,
        exception_handlers={Exception: console_error},
    )


__all__ = ["console_router", "HTMXRequest"]
