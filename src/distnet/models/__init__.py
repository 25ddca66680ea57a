"""All tables. Models live centrally so that every domain can join any table."""

from distnet.models.base import Base
from distnet.models.benefits import (
    BenefitCatalogue,
    BenefitTier,
    PointsLot,
    PointsLotUse,
    PointsSpend,
    RankLadder,
)
from distnet.models.console import ConsoleSession, ConsoleSignInAttempt
from distnet.models.finance import PayoutAccount, PayoutSkip, TaxIdentity, TaxTable
from distnet.models.foundation import ApiKey, AuditLog, BusinessDay, IdempotencyRecord, OutboxEvent, Staff
from distnet.models.money import (
    Commission,
    CommissionPlan,
    CommissionQualification,
    CommissionRate,
    CommissionSkip,
    LedgerAccount,
    LedgerPosting,
    LedgerTransaction,
    Order,
    Refund,
)
from distnet.models.network import (
    Card,
    Distributor,
    DistributorClosure,
    DistributorUpline,
    Hold,
    TeamLevel,
    team_level_delta,
)
from distnet.models.notify import (
    Consent,
    Notification,
    NotificationPreference,
    PreviousContact,
    VerificationCode,
)
from distnet.models.payouts import PayoutItem, PayoutItemCommission, PayoutRun, Repayment, SettlementRun
from distnet.models.risk import (
    Appeal,
    AppealEvent,
    MaintenanceWindow,
    ProcessedEvent,
    RiskCase,
    RiskRule,
    RiskRuleVersion,
    RiskScan,
    WebhookEndpoint,
)

__all__ = [
    "Base", "ApiKey", "AuditLog", "BusinessDay", "IdempotencyRecord", "OutboxEvent", "Commission", "CommissionPlan",
    "CommissionRate", "LedgerAccount", "LedgerPosting", "LedgerTransaction", "Order", "Refund", "Card",
    "Distributor", "DistributorClosure", "DistributorUpline", "Hold", "TeamLevel", "team_level_delta", "PayoutItem", "PayoutItemCommission", "PayoutRun", "Repayment", "SettlementRun",
    "Appeal", "AppealEvent", "MaintenanceWindow", "ProcessedEvent", "RiskCase", "RiskRule",
    "RiskRuleVersion", "RiskScan", "WebhookEndpoint", "PayoutAccount", "PayoutSkip", "TaxIdentity", "TaxTable",
    "Consent", "Notification", "NotificationPreference", "PreviousContact", "VerificationCode",
    "Staff", "ConsoleSession", "ConsoleSignInAttempt",
    "CommissionQualification", "CommissionSkip", "RankLadder", "BenefitCatalogue", "BenefitTier", "PointsLot", "PointsSpend", "PointsLotUse",
]
