"""The review console: a few server-rendered pages for risk staff (the API key goes in the
Authorization header like everywhere else, never in the URL). Every value is escaped."""

from __future__ import annotations

from html import escape
from typing import Annotated, Any

from litestar import Controller, MediaType, Response, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.auth import Principal, Role
from distnet.kit.http import roles
from distnet.risk import appeals, cases

RISK = roles(Role.risk_reviewer, Role.risk_admin)
STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
         ".overdue{color:#b00}pre{white-space:pre-wrap;max-width:60em}")


def _page(title: str, body: str) -> Response[str]:
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><nav><a href='/console/appeals'>Appeals</a> · "
            f"<a href='/console/cases'>Cases</a></nav><h1>{escape(title)}</h1>{body}</body></html>")
    return Response(html, media_type=MediaType.HTML)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or ''}</tbody></table>"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


class ConsoleController(Controller):
    path = "/console"
    tags = ["console"]
    include_in_schema = False

    @get("/appeals", opt=RISK)
    async def appeal_queue(self, session: AsyncSession, principal: Principal,
                           status: Annotated[str | None, Parameter(max_length=32)] = None) -> Response[str]:
        page = await appeals.queue(session, principal, status=status, reason=None, assignee=None, limit=200,
                                   cursor=None)
        rows = [[f"<a href='/console/appeals/{a['id']}'>#{a['id']}</a>", _e(a["status"]), _e(a["hold"]["reason"]),
                 _e(a["due_at"]) + (" <span class='overdue'>overdue</span>" if a["overdue"] else ""),
                 _e(a["assignee"]), _e(a["statement"][:120])] for a in page["items"]]
        return _page("Appeal queue", _table(["appeal", "status", "reason", "due", "assignee", "statement"], rows))

    @get("/appeals/{appeal_id:int}", opt=RISK)
    async def appeal_detail(self, session: AsyncSession, principal: Principal,
                            appeal_id: Annotated[int, Parameter(ge=1, le=2**62)]) -> Response[str]:
        a = await appeals.appeal_for_view(session, principal, appeal_id)
        history = [[_e(h["at"]), _e(h.get("actor")), _e(h["action"]), _e(h["from"]), _e(h["to"]), _e(h["note"])]
                   for h in a["history"]]
        import json

        body = (f"<p>Status <b>{_e(a['status'])}</b>, due {_e(a['due_at'])}, assignee {_e(a['assignee'])}, "
                f"hold #{_e(a['hold_id'])} ({_e(a['hold']['reason'])}, {_e(a['hold']['status'])})</p>"
                f"<h2>Statement</h2><pre>{_e(a['statement'])}</pre>"
                f"<h2>Hold evidence</h2><pre>{_e(json.dumps(a['hold']['evidence'], indent=1, default=str))}</pre>"
                "<h2>History</h2>" + _table(["at", "actor", "action", "from", "to", "note"], history)
                + "<p>Decide with <code>POST /api/v1/appeals/{id}/claim</code> and "
                  "<code>POST /api/v1/appeals/{id}/decision</code>.</p>")
        return _page(f"Appeal #{appeal_id}", body)

    @get("/cases", opt=RISK)
    async def case_list(self, session: AsyncSession,
                        status: Annotated[str | None, Parameter(max_length=32)] = None,
                        rule: Annotated[str | None, Parameter(max_length=64)] = None) -> Response[str]:
        page = await cases.list_cases(session, status=status or "open", rule=rule, limit=200, cursor=None)
        rows = [[f"#{c['id']}", _e(c["rule"]) + f" v{_e(c['rule_version'])}", _e(f"{c['score']:.2f}"),
                 _e(c["action"]), _e(", ".join(c["subject"]["card_numbers"])),
                 _e(", ".join(map(str, c["subject"]["distributor_ids"][:20]))), _e(c["created_at"])]
                for c in page["items"]]
        return _page("Risk cases", _table(["case", "rule", "score", "action", "cards", "distributors", "created"],
                                          rows))
