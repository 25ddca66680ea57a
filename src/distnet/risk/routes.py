"""HTTP API of the risk domain: holds, rules, scans, cases, maintenance windows, announcements,
appeals. Thin: every rule lives in the services."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post, put
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.cards.errors import CardNotFound
from distnet.kit.auth import STAFF, Principal, Role
from distnet.kit.contract import Items, Page
from distnet.kit.errors import Conflict
from distnet.kit.http import PUBLIC, roles
from distnet.kit.pagination import check_limit
from distnet.risk import appeals, cases, holds, maintenance, rules, scan
from distnet.risk.errors import (
    AppealAlreadyOpen,
    AppealClaimedByOther,
    AppealLimitReached,
    AppealNotFound,
    AppealTransitionRefused,
    CaseClosed,
    CaseNotFound,
    HoldAlreadyLifted,
    HoldNotAppealable,
    HoldNotFound,
    InvalidRuleParams,
    NotYourClaim,
    ReviewerConflictOfInterest,
    RuleNotFound,
    SeniorReviewerRequired,
    WindowFinished,
    WindowNotFound,
)
from distnet.risk.holds import MoneyAlreadyForfeited, MoneyAlreadyReleased
from distnet.risk.schemas import (
    Announcement,
    AppealCreate,
    AppealDecision,
    AppealMessage,
    AppealSummary,
    AppealView,
    CaseDecision,
    CaseView,
    CreatedWindow,
    DecidedCase,
    HoldCreate,
    HoldLift,
    HoldView,
    MaintenanceCreate,
    RulePrecision,
    RuleUpdate,
    RuleView,
    RuleWithPrecision,
    ScanCreate,
    ScanView,
    WindowView,
)
from distnet.settings import Settings

Id = Annotated[int, Parameter(ge=1, le=2**62)]
Limit = Annotated[int | None, Parameter(ge=1, le=500)]
Cursor = Annotated[str | None, Parameter(max_length=200)]
Filter = Annotated[str | None, Parameter(max_length=200)]
RISK = (Role.risk_reviewer, Role.risk_admin)
SETTLED = [MoneyAlreadyForfeited, MoneyAlreadyReleased]


class HoldController(Controller):
    path = "/api/v1"
    tags = ["holds"]

    @post(
        "/cards/{number:str}/holds",
        opt=roles(*RISK, raises=[CardNotFound, Conflict]),
        status_code=201,
        summary="Place a manual hold",
    )
    async def place(
        self,
        session: AsyncSession,
        principal: Principal,
        number: Annotated[str, Parameter(min_length=1, max_length=24)],
        data: HoldCreate,
    ) -> HoldView:
        return await holds.place_manual_hold(session, principal, number, reason=data.reason, note=data.note)

    @get(
        "/holds/{hold_id:int}",
        opt=roles(Role.distributor, *STAFF, raises=[HoldNotFound]),
        summary="A hold, what it rests on, and whether it can be appealed",
    )
    async def get_hold(
        self, session: AsyncSession, principal: Principal, settings: Settings, hold_id: Id
    ) -> HoldView:
        return await holds.hold_for_view(session, principal, hold_id, settings)

    @post(
        "/holds/{hold_id:int}/lift",
        opt=roles(*RISK, raises=[HoldNotFound, HoldAlreadyLifted, *SETTLED]),
        status_code=200,
        summary="Lift a hold: cleared (money released) or confirmed (forfeited after appeals)",
    )
    async def lift(
        self, session: AsyncSession, principal: Principal, settings: Settings, hold_id: Id, data: HoldLift
    ) -> HoldView:
        return await holds.lift_hold(
            session,
            principal,
            hold_id,
            outcome=data.outcome,
            note=data.note,
            forfeit_after_days=settings.business.forfeit_after_days,
        )


class RiskController(Controller):
    path = "/api/v1/risk"
    tags = ["risk"]

    @post(
        "/scans",
        opt=roles(Role.risk_admin, raises=[RuleNotFound]),
        status_code=201,
        summary="Run the detectors now",
    )
    async def run_scan(
        self, session: AsyncSession, principal: Principal, data: ScanCreate | None = None
    ) -> ScanView:
        only = data.rules if data and data.rules else None
        if only:
            for name in only:
                await rules.load_rule(session, name)  # 404 for an unknown rule
        return await scan.run_scan(session, principal, only=only)

    @get("/cases", opt=roles(*RISK), summary="Risk cases, newest first")
    async def list_cases(
        self,
        session: AsyncSession,
        status: Filter = None,
        rule: Filter = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[CaseView]:
        return await cases.list_cases(
            session, status=status, rule=rule, limit=check_limit(limit), cursor=cursor
        )

    @get(
        "/cases/{case_id:int}",
        opt=roles(*RISK, raises=[CaseNotFound]),
        summary="A risk case with its evidence",
    )
    async def get_case(self, session: AsyncSession, case_id: Id) -> CaseView:
        return cases.case_view(await cases.get_case(session, case_id))

    @post(
        "/cases/{case_id:int}/decision",
        opt=roles(*RISK, raises=[CaseNotFound, CaseClosed]),
        status_code=200,
        summary="Act on an open case: hold its subjects or dismiss it",
    )
    async def decide_case(
        self, session: AsyncSession, principal: Principal, case_id: Id, data: CaseDecision
    ) -> DecidedCase:
        return await cases.decide_case(session, principal, case_id, decision=data.decision, note=data.note)

    @get("/rules", opt=roles(Role.risk_admin), summary="The rules: mode, parameters, precision per version")
    async def list_rules(self, session: AsyncSession) -> Items[RuleWithPrecision]:
        configs = await rules.load_rules(session)
        by_rule: dict[str, list[RulePrecision]] = {}
        for p in await cases.precision(session):
            by_rule.setdefault(p.rule, []).append(p)
        return Items(items=[rules.rule_with_precision(c, by_rule.get(c.name, [])) for c in configs.values()])

    @put(
        "/rules/{name:str}",
        opt=roles(Role.risk_admin, raises=[RuleNotFound, InvalidRuleParams]),
        summary="Change a rule's mode and/or parameters (a new version)",
    )
    async def update_rule(
        self,
        session: AsyncSession,
        principal: Principal,
        name: Annotated[str, Parameter(max_length=64)],
        data: RuleUpdate,
    ) -> RuleView:
        cfg = await rules.update_rule(session, principal, name, mode=data.mode, params=data.params)
        return rules.rule_view(cfg)

    @get("/precision", opt=roles(*RISK), summary="Precision per rule version from appeal outcomes")
    async def precision(self, session: AsyncSession) -> Items[RulePrecision]:
        return Items(items=await cases.precision(session))


class MaintenanceController(Controller):
    path = "/api/v1"
    tags = ["maintenance"]

    @post(
        "/maintenance-windows",
        opt=roles(Role.risk_admin),
        status_code=201,
        summary="Announce a maintenance window (holds the cards in its scope while it runs)",
    )
    async def create(
        self, session: AsyncSession, settings: Settings, principal: Principal, data: MaintenanceCreate
    ) -> CreatedWindow:
        scope = None
        if data.scope is not None:
            scope = {k: v for k, v in (("regions", data.scope.regions), ("ranks", data.scope.ranks)) if v}
        return await maintenance.create_window(
            session,
            principal,
            starts_at=data.starts_at,
            ends_at=data.ends_at,
            scope=scope,
            message=data.message,
            emergency=data.emergency,
            emergency_reason=data.emergency_reason,
            min_notice_hours=settings.notify.maintenance_min_notice_hours,
        )

    @get("/maintenance-windows", opt=roles(*RISK), summary="Maintenance windows, newest first")
    async def list_windows(self, session: AsyncSession, limit: Limit = None) -> Page[WindowView]:
        return Page(items=await maintenance.list_windows(session, limit=check_limit(limit)), next_cursor=None)

    @post(
        "/maintenance-windows/{window_id:int}/cancel",
        opt=roles(Role.risk_admin, raises=[WindowNotFound, WindowFinished]),
        status_code=200,
        summary="Cancel a window: its holds are lifted",
    )
    async def cancel(self, session: AsyncSession, principal: Principal, window_id: Id) -> WindowView:
        return await maintenance.cancel_window(session, principal, window_id)

    @get("/announcements", opt=PUBLIC, summary="Current and upcoming maintenance windows")
    async def announcements(self, session: AsyncSession) -> Items[Announcement]:
        return Items(items=await maintenance.announcements(session))


class AppealController(Controller):
    path = "/api/v1/appeals"
    tags = ["appeals"]

    @post(
        "",
        opt=roles(
            Role.distributor, raises=[HoldNotFound, HoldNotAppealable, AppealAlreadyOpen, AppealLimitReached]
        ),
        status_code=201,
        summary="Appeal a hold (the owner)",
    )
    async def submit(
        self, session: AsyncSession, principal: Principal, settings: Settings, data: AppealCreate
    ) -> AppealView:
        return await appeals.submit(
            session,
            principal,
            settings.business,
            hold_id=data.hold_id,
            statement=data.statement,
            evidence=list(data.evidence),
        )

    @get("", opt=roles(*RISK), summary="Reviewer queue, oldest due first")
    async def queue(
        self,
        session: AsyncSession,
        principal: Principal,
        status: Filter = None,
        reason: Filter = None,
        assignee: Filter = None,
        limit: Limit = None,
        cursor: Cursor = None,
    ) -> Page[AppealSummary]:
        return await appeals.queue(
            session,
            principal,
            status=status,
            reason=reason,
            assignee=assignee,
            limit=check_limit(limit),
            cursor=cursor,
        )

    @get(
        "/{appeal_id:int}",
        opt=roles(Role.distributor, *RISK, raises=[AppealNotFound]),
        summary="An appeal with its full history",
    )
    async def get_appeal(self, session: AsyncSession, principal: Principal, appeal_id: Id) -> AppealView:
        return await appeals.appeal_for_view(session, principal, appeal_id)

    @post(
        "/{appeal_id:int}/claim",
        opt=roles(
            *RISK,
            raises=[
                AppealNotFound,
                AppealClaimedByOther,
                AppealTransitionRefused,
                ReviewerConflictOfInterest,
                SeniorReviewerRequired,
            ],
        ),
        status_code=200,
        summary="Take an appeal to review it",
    )
    async def claim(
        self, session: AsyncSession, principal: Principal, settings: Settings, appeal_id: Id
    ) -> AppealView:
        return await appeals.claim(session, principal, settings.business, appeal_id)

    @post(
        "/{appeal_id:int}/decision",
        opt=roles(
            *RISK,
            raises=[
                AppealNotFound,
                NotYourClaim,
                AppealTransitionRefused,
                ReviewerConflictOfInterest,
                SeniorReviewerRequired,
                *SETTLED,
            ],
        ),
        status_code=200,
        summary="Approve, reject, ask the owner for information, or escalate",
    )
    async def decide(
        self,
        session: AsyncSession,
        principal: Principal,
        settings: Settings,
        appeal_id: Id,
        data: AppealDecision,
    ) -> AppealView:
        return await appeals.decide(
            session, principal, settings.business, appeal_id, decision=data.decision, note=data.note
        )

    @post(
        "/{appeal_id:int}/messages",
        opt=roles(Role.distributor, raises=[AppealNotFound, AppealTransitionRefused]),
        status_code=200,
        summary="The owner's reply (answers a request for information)",
    )
    async def message(
        self, session: AsyncSession, principal: Principal, appeal_id: Id, data: AppealMessage
    ) -> AppealView:
        return await appeals.reply(
            session, principal, appeal_id, message=data.message, attachments=list(data.attachments)
        )


CONTROLLERS = [HoldController, RiskController, MaintenanceController, AppealController]
