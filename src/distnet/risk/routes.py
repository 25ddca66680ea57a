"""HTTP API of the risk domain: holds, rules, scans, cases, maintenance windows, announcements,
appeals. Thin: every rule lives in the services."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.auth import STAFF, Principal, Role
from distnet.kit.http import PUBLIC, roles
from distnet.kit.pagination import check_limit
from distnet.risk import appeals, cases, holds, maintenance, rules, scan
from distnet.risk.schemas import (
    AppealCreate,
    AppealDecision,
    AppealMessage,
    CaseDecision,
    HoldCreate,
    HoldLift,
    MaintenanceCreate,
    RuleUpdate,
    ScanCreate,
)
from distnet.settings import Settings

Id = Annotated[int, Parameter(ge=1, le=2**62)]
Limit = Annotated[int | None, Parameter(ge=1, le=500)]
Cursor = Annotated[str | None, Parameter(max_length=200)]
Filter = Annotated[str | None, Parameter(max_length=200)]
RISK = (Role.risk_reviewer, Role.risk_admin)


class HoldController(Controller):
    path = "/api/v1"
    tags = ["holds"]

    @post("/cards/{number:str}/holds", opt=roles(*RISK), status_code=201, summary="Place a manual hold")
    async def place(self, session: AsyncSession, principal: Principal,
                    number: Annotated[str, Parameter(min_length=1, max_length=24)], data: HoldCreate) -> dict[str, Any]:
        return await holds.place_manual_hold(session, principal, number, reason=data.reason, note=data.note)

    @get("/holds/{hold_id:int}", opt=roles(Role.distributor, *STAFF))
    async def get_hold(self, session: AsyncSession, principal: Principal, settings: Settings,
                       hold_id: Id) -> dict[str, Any]:
        return await holds.hold_for_view(session, principal, hold_id, settings)

    @post("/holds/{hold_id:int}/lift", opt=roles(*RISK), status_code=200)
    async def lift(self, session: AsyncSession, principal: Principal, settings: Settings, hold_id: Id,
                   data: HoldLift) -> dict[str, Any]:
        return await holds.lift_hold(session, principal, hold_id, outcome=data.outcome, note=data.note,
                                     forfeit_after_days=settings.business.forfeit_after_days)


class RiskController(Controller):
    path = "/api/v1/risk"
    tags = ["risk"]

    @post("/scans", opt=roles(Role.risk_admin), status_code=201, summary="Run the detectors now")
    async def run_scan(self, session: AsyncSession, principal: Principal,
                       data: ScanCreate | None = None) -> dict[str, Any]:
        only = data.rules if data and data.rules else None
        if only:
            for name in only:
                await rules.load_rule(session, name)  # 404 for an unknown rule
        return await scan.run_scan(session, principal, only=only)

    @get("/cases", opt=roles(*RISK))
    async def list_cases(self, session: AsyncSession, status: Filter = None, rule: Filter = None,
                         limit: Limit = None, cursor: Cursor = None) -> dict[str, Any]:
        return await cases.list_cases(session, status=status, rule=rule, limit=check_limit(limit), cursor=cursor)

    @get("/cases/{case_id:int}", opt=roles(*RISK))
    async def get_case(self, session: AsyncSession, case_id: Id) -> dict[str, Any]:
        return cases.case_view(await cases.get_case(session, case_id))

    @post("/cases/{case_id:int}/decision", opt=roles(*RISK), status_code=200)
    async def decide_case(self, session: AsyncSession, principal: Principal, case_id: Id,
                          data: CaseDecision) -> dict[str, Any]:
        return await cases.decide_case(session, principal, case_id, decision=data.decision, note=data.note)

    @get("/rules", opt=roles(Role.risk_admin))
    async def list_rules(self, session: AsyncSession) -> dict[str, Any]:
        configs = await rules.load_rules(session)
        by_rule: dict[str, list[dict[str, Any]]] = {}
        for p in await cases.precision(session):
            by_rule.setdefault(p["rule"], []).append(p)
        return {"items": [{**rules.rule_view(c), "precision": by_rule.get(c.name, [])} for c in configs.values()]}

    @put("/rules/{name:str}", opt=roles(Role.risk_admin))
    async def update_rule(self, session: AsyncSession, principal: Principal,
                          name: Annotated[str, Parameter(max_length=64)], data: RuleUpdate) -> dict[str, Any]:
        cfg = await rules.update_rule(session, principal, name, mode=data.mode, params=data.params)
        return rules.rule_view(cfg)

    @get("/precision", opt=roles(*RISK), summary="Precision per rule version from appeal outcomes")
    async def precision(self, session: AsyncSession) -> dict[str, Any]:
        return {"items": await cases.precision(session)}


class MaintenanceController(Controller):
    path = "/api/v1"
    tags = ["maintenance"]

    @post("/maintenance-windows", opt=roles(Role.risk_admin), status_code=201)
    async def create(self, session: AsyncSession, settings: Settings, principal: Principal,
                     data: MaintenanceCreate) -> dict[str, Any]:
        scope = None
        if data.scope is not None:
            scope = {k: v for k, v in (("regions", data.scope.regions), ("ranks", data.scope.ranks)) if v}
        return await maintenance.create_window(session, principal, starts_at=data.starts_at, ends_at=data.ends_at,
                                               scope=scope, message=data.message, emergency=data.emergency,
                                               emergency_reason=data.emergency_reason,
                                               min_notice_hours=settings.notify.maintenance_min_notice_hours)

    @get("/maintenance-windows", opt=roles(*RISK))
    async def list_windows(self, session: AsyncSession, limit: Limit = None) -> dict[str, Any]:
        return {"items": await maintenance.list_windows(session, limit=check_limit(limit)), "next_cursor": None}

    @post("/maintenance-windows/{window_id:int}/cancel", opt=roles(Role.risk_admin), status_code=200)
    async def cancel(self, session: AsyncSession, principal: Principal, window_id: Id) -> dict[str, Any]:
        return await maintenance.cancel_window(session, principal, window_id)

    @get("/announcements", opt=PUBLIC, summary="Current and upcoming maintenance windows")
    async def announcements(self, session: AsyncSession) -> dict[str, Any]:
        return {"items": await maintenance.announcements(session)}


class AppealController(Controller):
    path = "/api/v1/appeals"
    tags = ["appeals"]

    @post("", opt=roles(Role.distributor), status_code=201)
    async def submit(self, session: AsyncSession, principal: Principal, settings: Settings,
                     data: AppealCreate) -> dict[str, Any]:
        return await appeals.submit(session, principal, settings.business, hold_id=data.hold_id,
                                    statement=data.statement, evidence=list(data.evidence))

    @get("", opt=roles(*RISK), summary="Reviewer queue, oldest due first")
    async def queue(self, session: AsyncSession, principal: Principal, status: Filter = None, reason: Filter = None,
                    assignee: Filter = None, limit: Limit = None, cursor: Cursor = None) -> dict[str, Any]:
        return await appeals.queue(session, principal, status=status, reason=reason, assignee=assignee,
                                   limit=check_limit(limit), cursor=cursor)

    @get("/{appeal_id:int}", opt=roles(Role.distributor, *RISK))
    async def get_appeal(self, session: AsyncSession, principal: Principal, appeal_id: Id) -> dict[str, Any]:
        return await appeals.appeal_for_view(session, principal, appeal_id)

    @post("/{appeal_id:int}/claim", opt=roles(*RISK), status_code=200)
    async def claim(self, session: AsyncSession, principal: Principal, settings: Settings,
                    appeal_id: Id) -> dict[str, Any]:
        return await appeals.claim(session, principal, settings.business, appeal_id)

    @post("/{appeal_id:int}/decision", opt=roles(*RISK), status_code=200)
    async def decide(self, session: AsyncSession, principal: Principal, settings: Settings, appeal_id: Id,
                     data: AppealDecision) -> dict[str, Any]:
        return await appeals.decide(session, principal, settings.business, appeal_id, decision=data.decision,
                                    note=data.note)

    @post("/{appeal_id:int}/messages", opt=roles(Role.distributor), status_code=200)
    async def message(self, session: AsyncSession, principal: Principal, appeal_id: Id,
                      data: AppealMessage) -> dict[str, Any]:
        return await appeals.reply(session, principal, appeal_id, message=data.message,
                                   attachments=list(data.attachments))


CONTROLLERS = [HoldController, RiskController, MaintenanceController, AppealController]
