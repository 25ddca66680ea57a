"""The console's HTTP plumbing: the session guard (cookie → principal, roles, CSRF), HTML error
pages, the template environment and its filters (times to the minute in the platform's zone,
money with two decimals, people by name)."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from distnet.console import signin
from distnet.console.errors import CsrfTokenMissing, SignInRequired
from distnet.kit.errors import DistnetError, Forbidden
from distnet.kit.money import format_amount

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
COOKIE = "distnet_console"
LOGIN_COOKIE = "distnet_console_login"
"""Before sign-in: a signed random token that the login form repeats (CSRF double submit)."""
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# pages by role: (path, label, roles that see it)
NAV: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("/console/appeals", "Appeals", ("risk_reviewer", "risk_admin")),
    ("/console/cases", "Cases", ("risk_reviewer", "risk_admin")),
    ("/console/holds", "Holds & cards", ("risk_reviewer", "risk_admin")),
    ("/console/rules", "Rules", ("risk_admin",)),
    ("/console/maintenance", "Maintenance", ("risk_admin",)),
    ("/console/scans", "Scans", ("risk_admin",)),
    ("/console/settlements", "Settlement", ("finance", "finance_approver")),
    ("/console/payout-runs", "Payout runs", ("finance", "finance_approver")),
    ("/console/reports", "Reports", ("finance", "finance_approver")),
)


# --------------------------------------------------------------------------- guard


def client_of(connection: ASGIConnection) -> str:
    return connection.client.host if connection.client else "unknown"


def _secure(connection: ASGIConnection) -> bool:
    return connection.url.scheme == "https" or connection.headers.get("x-forwarded-proto") == "https"


def set_session_cookie(response: Response, connection: ASGIConnection, settings: Any, token: str) -> None:
    response.set_cookie(
        COOKIE,
        signin.sign(settings, token),
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_secure(connection),
        max_age=settings.console.idle_minutes * 60,
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/console")


def login_token(connection: ASGIConnection) -> tuple[str, str | None]:
    """(token for the login form, cookie value to set or None when the browser has one)."""
    settings = connection.app.state.settings
    existing = signin.unsign(settings, connection.cookies.get(LOGIN_COOKIE))
    if existing:
        return existing, None
    token = secrets.token_urlsafe(24)
    return token, signin.sign(settings, token)


def set_login_cookie(response: Response, connection: ASGIConnection, value: str | None) -> None:
    if value:
        response.set_cookie(
            LOGIN_COOKIE, value, path="/console", httponly=True, samesite="strict", secure=_secure(connection)
        )


async def _submitted_csrf(connection: ASGIConnection) -> str | None:
    header = connection.headers.get(CSRF_HEADER)
    if header:
        return header
    if isinstance(connection, Request):
        form = await connection.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def console_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Every console route: ``opt["stage"]`` is ``public`` (static files), ``anonymous`` (login),
    ``second_factor`` or, by default, ``active``; ``opt["roles"]`` as in the API. A POST must
    repeat its session's CSRF token (form field or header), else 403."""
    stage = handler.opt.get("stage", "active")
    if stage == "public":
        return
    settings = connection.app.state.settings
    async with connection.app.state.sessionmaker() as db:
        signed = await signin.load(db, settings, connection.cookies.get(COOKIE))
        await db.commit()
    connection.state.console = signed
    if stage == "active":
        if signed is None or signed.stage != "active":
            raise SignInRequired()
        connection.state.principal = signed.principal
        wanted = frozenset(handler.opt.get("roles", ()))
        if wanted and not signed.principal.has(*wanted):
            raise Forbidden("your role may not use this page")
    elif stage == "second_factor" and (signed is None or signed.stage != "second_factor"):
        raise SignInRequired()
    if connection.scope.get("method", "GET") not in SAFE_METHODS:
        expected: str | None
        if signed is not None and stage != "anonymous":
            expected = signed.csrf_token
        else:
            expected = signin.unsign(settings, connection.cookies.get(LOGIN_COOKIE))
        submitted = await _submitted_csrf(connection)
        if not expected or not submitted or not secrets.compare_digest(expected, submitted):
            raise CsrfTokenMissing("this form has no valid security token; reload the page and try again")


# --------------------------------------------------------------------------- pages


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def nav_for(roles: frozenset[str]) -> list[tuple[str, str]]:
    admin = "admin" in roles
    return [(path, label) for path, label, who in NAV if admin or roles & set(who)]


def page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> Template:
    signed = getattr(request.state, "console", None)
    me = signed.principal if signed is not None and signed.stage == "active" else None
    base = {
        "me": me,
        "roles": me.roles if me else frozenset(),
        "nav": nav_for(me.roles) if me else [],
        "csrf": signed.csrf_token if signed is not None else "",
        "path": request.url.path,
        "partial": is_htmx(request) and not request.headers.get("hx-boosted"),
    }
    return Template(template_name=template, context={**base, **context}, status_code=status_code)


def can(request: Request, *roles: str) -> bool:
    signed = getattr(request.state, "console", None)
    return bool(signed and signed.stage == "active" and signed.principal.has(*roles))


# --------------------------------------------------------------------------- errors


def console_error(request: Request, exc: Exception) -> Response:
    """Errors under /console are pages, never JSON: no session → the login page; a refused action
    → its message on the page (for HTMX, swapped into the page's message area)."""
    if isinstance(exc, SignInRequired):
        if is_htmx(request):
            return Response("", status_code=200, headers={"HX-Redirect": "/console/login"})
        return Redirect("/console/login", status_code=303)
    details: list[str] = []
    if isinstance(exc, DistnetError):
        status, title, message = exc.status, exc.title, ACTOR_ID.sub("", exc.message)
        headers = dict(exc.headers)
        details = _details(exc.extra)
    elif isinstance(exc, HTTPException):
        status, title, message = exc.status_code, _HTTP_TITLES.get(exc.status_code, "Error"), str(exc.detail)
        headers = {}
        if status == 400 and "validation" in message.lower():
            message = "some fields of the form are not valid"
    else:
        import logging

        logging.getLogger("distnet.console").exception("unhandled error on %s", request.url.path)
        status, title, message, headers = (
            500,
            "Something went wrong",
            "an unexpected error occurred; it has been logged",
            {},
        )
    if is_htmx(request):
        headers.update({"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
        return _flash(request, title, message, headers, details)
    return _error_page(request, status, title, message, headers, details)


def _details(extra: dict[str, Any]) -> list[str]:
    """Every problem of a refused whole-file import or form, one line each."""
    out = []
    for p in extra.get("problems") or []:
        where = " · ".join(
            f"{k.replace('_', ' ')} {p[k]}" for k in ("line", "item_id") if p.get(k) is not None
        )
        out.append(f"{where}: {p.get('problem')}" if where else str(p.get("problem")))
    for e in extra.get("errors") or []:
        out.append(f"{str(e.get('field', '')).replace('_', ' ')}: {e.get('message')}")
    return out


ACTOR_ID = re.compile(r"\b(?:staff|key):\d+:")
"""Actor strings inside service messages ("claimed by staff:3:Li Na") read as the person's name."""

_HTTP_TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    413: "Too large",
    429: "Too many attempts",
}


def _flash(
    request: Request, title: str, message: str, headers: dict[str, str], details: list[str]
) -> Template:
    tpl = page(request, "_flash.html", kind="error", title=title, message=message, details=details)
    tpl.headers.update(headers)
    return tpl


def _error_page(
    request: Request, status: int, title: str, message: str, headers: dict[str, str], details: list[str]
) -> Template:
    tpl = page(request, "error.html", status_code=status, title=title, message=message, details=details)
    tpl.headers.update(headers)
    return tpl


def console_aware(handlers: dict[Any, Any]) -> dict[Any, Any]:
    """The app's exception handlers, except that paths under /console get pages."""

    def wrap(handler: Any) -> Any:
        def handle(request: Request, exc: Exception) -> Response:
            if request.url.path == "/console" or request.url.path.startswith("/console/"):
                return console_error(request, exc)
            return handler(request, exc)

        return handle

    return {exc: wrap(h) for exc, h in handlers.items()}


# --------------------------------------------------------------------------- filters


def zone(settings: Any) -> ZoneInfo:
    console = getattr(settings, "console", None)
    name = getattr(console, "time_zone", None) or getattr(settings, "time_zone", None) or "Asia/Shanghai"
    return ZoneInfo(name)


def _when(value: Any, tz: ZoneInfo) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    return str(value)


def when_in(settings: Any):
    tz = zone(settings)
    return lambda value: _when(value, tz)


def money(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return format_amount(value)
    try:
        return f"{Decimal(str(value)):.2f}"
    except InvalidOperation:
        return str(value)


def person(actor: Any) -> str:
    """``staff:3:Li Na`` → Li Na; ``key:4:ops`` → ops; ``system`` → system."""
    if not actor:
        return "—"
    text = str(actor)
    for prefix in ("staff:", "key:"):
        if text.startswith(prefix):
            parts = text.split(":", 2)
            return parts[2] if len(parts) == 3 and parts[2] else "unnamed key"
    return text


def countdown(due: Any, now: datetime | None = None, *, paused: bool = False) -> str:
    if due is None:
        return "—"
    if isinstance(due, str):
        due = datetime.fromisoformat(due)
    if paused:
        return "paused (waiting for the owner)"
    left = due - (now or datetime.now(UTC))
    minutes = int(abs(left.total_seconds()) // 60)
    d, rest = divmod(minutes, 24 * 60)
    h, m = divmod(rest, 60)
    text = (f"{d} d {h} h" if d else f"{h} h {m} min") if minutes else "now"
    return f"overdue by {text}" if left.total_seconds() < 0 else f"{text} left"


def words(value: Any) -> str:
    """snake_case codes as words: ``fake_promotion`` → fake promotion."""
    return "—" if value is None else str(value).replace("_", " ")


def as_text(value: Any) -> str:
    """An attachment as plain text (a link stays text: the console never fetches or embeds it)."""
    if isinstance(value, dict):
        return " · ".join(f"{k}: {v}" for k, v in value.items() if isinstance(v, (str, int, float, bool)))
    return "" if value is None else str(value)


def cell(value: Any, tz: ZoneInfo) -> str:
    """A report cell: yes/no, times to the minute, everything else as it is."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return _when(value, tz)
    return "—" if value is None else str(value)


def template_config(settings: Any) -> TemplateConfig:
    tz = zone(settings)

    def setup(engine: JinjaTemplateEngine) -> None:
        env = engine.engine
        env.filters.update(
            when=lambda v: _when(v, tz),
            money=money,
            person=person,
            words=words,
            countdown=countdown,
            as_text=as_text,
            cell=lambda v: cell(v, tz),
        )
        env.globals.update(zone_name=str(tz))

    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=setup)
