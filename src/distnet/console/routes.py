"""The staff console's pages (server-rendered, HTMX for partial updates). Thin: every action is
the same service call as the API's, with the signed-in person as the principal."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, Router, get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar_htmx import HTMXRequest
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.console import repository, signin, words
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
)
from distnet.kit.auth import Principal, Role
from distnet.kit.http import roles
from distnet.risk import appeals, holds
from distnet.settings import Settings

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
        for path, roles_ in (("/console/appeals", (Role.risk_reviewer, Role.risk_admin)),
                             ("/console/payout-runs", (Role.finance, Role.finance_approver))):
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
            token = await signin.begin(session, settings, raw_key=form.get("key", ""), client=client_of(request))
        except (SignInRefused, SignInThrottled) as exc:  # the failed attempt is kept (committed)
            login_csrf, _ = login_token(request)
            tpl = page(request, "login.html", status_code=exc.status, title="Sign in", login_csrf=login_csrf,
                       error=exc.message)
            tpl.headers.update(exc.headers)
            return tpl
        response = back("/console/login/code")
        set_session_cookie(response, request, settings, token)
        return response

    @get("/login/code", opt=SECOND_FACTOR)
    async def code_page(self, request: Request, settings: Settings) -> Template:
        signed = request.state.console
        return page(request, "second_factor.html", title="Second factor", enrol=signin.enrolment(settings, signed),
                    name=signed.staff.name, error=None)

    @post("/login/code", opt=SECOND_FACTOR, status_code=303)
    async def code(self, request: Request, session: AsyncSession, settings: Settings) -> Any:
        signed = request.state.console
        form = await form_of(request)
        try:
            token = await signin.verify_code(session, settings, signed, code=form.get("code", ""),
                                             client=client_of(request))
        except (SignInRefused, SignInThrottled) as exc:
            if exc.message.startswith("too many wrong codes"):
                response = page(request, "error.html", status_code=401, title="Sign-in refused", message=exc.message)
                clear_session_cookie(response)
                return response
            tpl = page(request, "second_factor.html", status_code=exc.status, title="Second factor",
                       enrol=signin.enrolment(settings, signed), name=signed.staff.name, error=exc.message)
            tpl.headers.update(exc.headers)
            return tpl
        response = back("/console/")
        set_session_cookie(response, request, settings, token)
        return response

    @post("/logout", status_code=303, opt={"roles": ()})
    async def logout(self, request: Request, session: AsyncSession) -> Redirect:
        await signin.sign_out(session, request.state.console)
        response = back("/console/login")
        clear_session_cookie(response)
        return response


class ReviewController(Controller):
    path = "/"
    opt = RISK

    @get("/appeals")
    async def appeal_queue(self, request: Request, session: AsyncSession, principal: Principal,
                           status: Filter = None, reason: Filter = None, mine: bool = False,
                           overdue: bool = False) -> Template:
        queue = await appeals.queue(session, principal, status=status or None, reason=reason or None,
                                    assignee="me" if mine else None, limit=200, cursor=None)
        items = [a for a in field(queue, "items") if not overdue or field(a, "overdue")]
        who = await repository.who_by_id(session, [field(a, "distributor_id") for a in items])
        ctx = dict(title="Appeal queue", items=items, owners=who, statuses=list(appeals.AppealStatus),
                   reasons=REASONS, f={"status": status or "", "reason": reason or "", "mine": mine,
                                       "overdue": overdue})
        return page(request, "appeals.html", **ctx)

    @get("/appeals/{appeal_id:int}")
    async def appeal_page(self, request: Request, session: AsyncSession, principal: Principal,
                          settings: Settings, appeal_id: Id) -> Template:
        appeal = await appeals.appeal_for_view(session, principal, appeal_id)
        hold = await holds.get_hold(session, field(appeal, "hold_id"))
        owner_id = field(appeal, "distributor_id")
        who = await repository.who_by_id(session, [owner_id, *words.distributor_ids_in(hold.evidence)])
        hold_row = (await repository.search_holds(session, hold_id=hold.id))[0]
        orders, total = await repository.orders_by_id(session, (hold.evidence or {}).get("order_ids", []), limit=50)
        return page(request, "appeal.html", title=f"Appeal {appeal_id}", a=appeal, hold=hold_row,
                    owner=who.get(owner_id), evidence=words.evidence_rows(hold.evidence, name=words.names(who),
                                                                           when=when_in(settings)),
                    orders=orders, orders_total=total, mine=principal.is_person(field(appeal, "assignee")),
                    decisions=DECISIONS)

    @post("/appeals/{appeal_id:int}/claim", status_code=303)
    async def claim(self, request: Request, session: AsyncSession, principal: Principal, settings: Settings,
                    appeal_id: Id) -> Response:
        await appeals.claim(session, principal, settings.business, appeal_id)
        return back(f"/console/appeals/{appeal_id}", request)

    @post("/appeals/{appeal_id:int}/decision", status_code=303)
    async def decide(self, request: Request, session: AsyncSession, principal: Principal, settings: Settings,
                     appeal_id: Id) -> Response:
        form = await form_of(request)
        await appeals.decide(session, principal, settings.business, appeal_id, decision=form.get("decision", ""),
                             note=form.get("note") or None)
        return back(f"/console/appeals/{appeal_id}", request)

    @get("/holds")
    async def hold_search(self, request: Request, session: AsyncSession, card: Filter = None,
                          distributor: Filter = None, reason: Filter = None,
                          hold_state: Annotated[str | None, Parameter(query="state", max_length=16)] = None
                          ) -> Template:
        state = hold_state
        searched = bool(card or distributor or reason or state)
        rows = await repository.search_holds(
            session, card=card or None, distributor=distributor or None, reason=reason or None,
            active={"active": True, "past": False}.get(state or "")) if searched else []
        return page(request, "holds.html", title="Holds and cards", rows=rows, searched=searched, reasons=REASONS,
                    f={"card": card or "", "distributor": distributor or "", "reason": reason or "",
                       "state": state or ""})

    @get("/cards/{number:str}")
    async def card_page(self, request: Request, session: AsyncSession, principal: Principal,
                        number: Annotated[str, Parameter(min_length=1, max_length=24)]) -> Template:
        from distnet.cards import service as cards

        card = await cards.card_for_view(session, principal, number)
        owner = (await repository.who_by_id(session, [field(card, "distributor_id")])).get(
            field(card, "distributor_id"))
        hold_rows = await repository.search_holds(session, card=number, distributor=None, reason=None, active=None)
        orders = await repository.orders_of_card(session, number)
        return page(request, "card.html", title=f"Card {number}", card=card, owner=owner,
                    active=[h for h in hold_rows if h.active], past=[h for h in hold_rows if not h.active],
                    orders=orders, manual_reasons=holds.MANUAL_REASONS)

    @post("/cards/{number:str}/holds", status_code=303)
    async def place_hold(self, request: Request, session: AsyncSession, principal: Principal,
                         number: Annotated[str, Parameter(min_length=1, max_length=24)]) -> Response:
        form = await form_of(request)
        await holds.place_manual_hold(session, principal, number, reason=form.get("reason", "manual"),
                                      note=form.get("note") or None)
        return back(f"/console/cards/{number}", request)

    @post("/holds/{hold_id:int}/lift", status_code=303)
    async def lift(self, request: Request, session: AsyncSession, principal: Principal, settings: Settings,
                   hold_id: Id) -> Response:
        form = await form_of(request)
        view = await holds.lift_hold(session, principal, hold_id, outcome=form.get("outcome", ""),
                                     note=form.get("note") or None,
                                     forfeit_after_days=settings.business.forfeit_after_days)
        return back(f"/console/cards/{field(view, 'card_number')}", request)


REASONS = ("fake_promotion", "order_brushing", "unpaid_balance", "maintenance", "manual")


DECISIONS = (("request_info", "Request information"), ("approve", "Approve (clear the hold)"),
             ("reject", "Reject (confirm the hold)"), ("escalate", "Escalate to a risk admin"))


def console_router(controllers: list[type] | None = None) -> Router:
    static = create_static_files_router(path="/static", directories=[STATIC], opt={"stage": "public"},
                                        include_in_schema=False, send_as_attachment=False)
    return Router(
        path="/console",
        route_handlers=[SignInController, ReviewController, *(controllers or []), static],
        guards=[console_guard],
        opt={"console": True},
        include_in_schema=False,
        request_class=HTMXRequest,
        exception_handlers={Exception: console_error},
    )


__all__ = ["console_router", "HTMXRequest"]
