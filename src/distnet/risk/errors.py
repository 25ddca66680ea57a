"""Errors of the risk domain (holds, rules, scans, maintenance windows, appeals)."""

from __future__ import annotations

from distnet.kit.errors import Conflict, DistnetError, Forbidden, NotFound, ValidationFailed


class HoldNotFound(NotFound):
    code = "hold-not-found"
    title = "Hold not found"


class HoldAlreadyLifted(Conflict):
    code = "hold-already-lifted"
    title = "The hold is already lifted"


class RuleNotFound(NotFound):
    code = "risk-rule-not-found"
    title = "Risk rule not found"


class InvalidRuleParams(ValidationFailed):
    code = "invalid-rule-params"
    title = "Invalid rule parameters"


class CaseNotFound(NotFound):
    code = "risk-case-not-found"
    title = "Risk case not found"


class CaseClosed(Conflict):
    code = "risk-case-closed"
    title = "The risk case is already decided"


class WindowNotFound(NotFound):
    code = "maintenance-window-not-found"
    title = "Maintenance window not found"


class WindowFinished(Conflict):
    code = "maintenance-window-finished"
    title = "The maintenance window has ended or was cancelled"


class AppealNotFound(NotFound):
    code = "appeal-not-found"
    title = "Appeal not found"


class AppealAlreadyOpen(Conflict):
    code = "appeal-already-open"
    title = "An appeal is already open for this hold"


class AppealLimitReached(Conflict):
    code = "appeal-limit-reached"
    title = "No more resubmissions are allowed for this hold"


class HoldNotAppealable(Conflict):
    code = "hold-not-appealable"
    title = "This hold cannot be appealed"


class AppealTransitionRefused(Conflict):
    code = "appeal-transition-refused"
    title = "The appeal cannot do that in its current state"


class AppealClaimedByOther(Conflict):
    code = "appeal-claimed"
    title = "Another reviewer holds this appeal"


class NotYourClaim(Conflict):
    code = "appeal-not-claimed-by-you"
    title = "Claim the appeal before deciding it"


class ReviewerConflictOfInterest(Forbidden):
    code = "reviewer-placed-hold"
    title = "The reviewer who placed a manual hold cannot decide its appeal"


class SeniorReviewerRequired(Forbidden):
    code = "senior-reviewer-required"
    title = "An escalated appeal needs a risk admin"


__all__ = [
    "AppealAlreadyOpen",
    "AppealClaimedByOther",
    "AppealLimitReached",
    "AppealNotFound",
    "AppealTransitionRefused",
    "CaseClosed",
    "CaseNotFound",
    "DistnetError",
    "HoldAlreadyLifted",
    "HoldNotAppealable",
    "HoldNotFound",
    "InvalidRuleParams",
    "NotYourClaim",
    "ReviewerConflictOfInterest",
    "RuleNotFound",
    "SeniorReviewerRequired",
    "WindowFinished",
    "WindowNotFound",
]
