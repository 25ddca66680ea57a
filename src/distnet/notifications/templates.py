"""Notice texts in Chinese and English. Pure: ``render(kind, locale, params)`` -> (subject, body).

Every notice says what happened, the amount or the reason in words, any deadline, and what the
distributor can do next. Parameters come from the event (amounts as minor units or "12.34"
strings); a missing parameter renders as "-" rather than failing a whole fan-out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

LOCALES = ("zh", "en")

REASONS = {
    "fake_promotion": ("虚假推广", "fake promotion"),
    "order_brushing": ("恶意刷单", "order brushing"),
    "unpaid_balance": ("欠款未还", "an unpaid balance"),
    "maintenance": ("系统维护", "system maintenance"),
    "manual": ("人工审核", "a manual review"),
    "refund_clawback": ("订单退款冲回已结算佣金", "a refund reversed commission already settled"),
}
RANK_NAMES = {
    "member": ("普通会员", "member"),
    "silver": ("银卡", "silver"),
    "gold": ("金卡", "gold"),
    "platinum": ("白金卡", "platinum"),
}
PURPOSES = {
    "closure": ("注销账户", "closing your account"),
    "contact_phone": ("验证手机号", "confirming your phone number"),
    "contact_email": ("验证邮箱", "confirming your e-mail address"),
    "payout_account": ("更改收款账户", "changing your payout account"),
    "key_recovery": ("找回 API 密钥", "recovering your API key"),
}

CONTACTS = {"phone": ("手机号", "phone number"), "email": ("邮箱", "e-mail address")}


HOW_REPLACED = {
    "recovery_email": ("发送到您邮箱的验证码找回", "a recovery code sent to your e-mail"),
    "recovery_sms": ("发送到您手机的验证码找回", "a recovery code sent to your phone"),
}


@dataclass(frozen=True, slots=True)
class Template:
    subject: str
    body: str


def _t(zh_subject: str, zh_body: str, en_subject: str, en_body: str) -> dict[str, Template]:
    return {"zh": Template(zh_subject, zh_body), "en": Template(en_subject, en_body)}


TEMPLATES: dict[str, dict[str, Template]] = {
    "hold_placed": _t(
        "您的分销卡已被暂停",
        "您的分销卡 {card_number} 因{reason}被暂停(停卡)。暂停期间不能销售，新佣金将被冻结。{appeal}",
        "Your distribution card is suspended",
        "Your card {card_number} is suspended because of {reason}. "
        "While it is suspended you cannot sell and new commissions are withheld. {appeal}",
    ),
    "hold_lifted": _t(
        "您的分销卡暂停已解除",
        "因{reason}而对您的分销卡的暂停已解除，结果：{outcome}。{next}",
        "A suspension of your card was lifted",
        "The suspension for {reason} was lifted; outcome: {outcome}. {next}",
    ),
    "appeal_info_requested": _t(
        "申诉需要补充材料",
        "审核员需要您补充申诉 #{appeal_id} 的材料：{note}。请通过 POST /api/v1/appeals/{appeal_id}/messages 回复；"
        "在您回复之前审核时限暂停。",
        "Your appeal needs more information",
        "The reviewer needs more information on appeal #{appeal_id}: {note}. "
        "Reply with POST /api/v1/appeals/{appeal_id}/messages; the review clock waits for your reply.",
    ),
    "appeal_decided": _t(
        "申诉结果：{decision}",
        "您的申诉 #{appeal_id} 已处理，结果：{decision}。说明：{note}。{next}",
        "Appeal decided: {decision}",
        "Your appeal #{appeal_id} was decided: {decision}. Note: {note}. {next}",
    ),
    "maintenance_announced": _t(
        "系统维护通知",
        "系统将于 {starts_at} 至 {ends_at}(UTC)维护：{message}。维护期间您的分销卡暂停销售，不影响佣金，"
        "结束后自动恢复，无需操作。",
        "Planned maintenance",
        "The system is under maintenance from {starts_at} to {ends_at} (UTC): {message}. "
        "Your card cannot sell during the window; commissions are not affected and selling resumes by itself "
        "at the end. Nothing to do.",
    ),
    "maintenance_started": _t(
        "系统维护已开始",
        "系统维护已开始，预计 {ends_at}(UTC)结束：{message}。结束后分销卡自动恢复。",
        "Maintenance has started",
        "Maintenance has started and ends at {ends_at} (UTC): {message}. "
        "Your card resumes by itself at the end.",
    ),
    "payout_paid": _t(
        "佣金已打款 {amount}",
        "本次提现 {amount} 已打入您的收款账户(银行流水号 {reference})。请核对到账情况；如有疑问请联系财务。",
        "Payout paid: {amount}",
        "{amount} was paid to your payout account (bank reference {reference}). "
        "Check your account; contact finance if it has not arrived.",
    ),
    "payout_failed": _t(
        "佣金打款失败 {amount}",
        "本次提现 {amount} 打款失败，原因：{reason}。款项已退回您的可提现余额，"
        "请核对收款账户信息，下次打款时将再次支付。",
        "Payout failed: {amount}",
        "The payout of {amount} failed: {reason}. The money is back in your available "
        "balance; check your payout account details, it is paid again in the next payout run.",
    ),
    "payout_returned": _t(
        "佣金打款被银行退回 {amount}",
        "已支付的 {amount} 被银行退回(退票，银行流水号 {reference})，原因：{reason}。"
        "款项及代扣的个税已退回您的可提现余额。请重新确认或更正收款账户(PUT /api/v1/distributors/{distributor_id}/payout-account)，"
        "确认后在下一次打款中再次支付。",
        "Payout returned: {amount}",
        "The payout of {amount} was returned by the bank (reference {reference}): "
        "{reason}. The money, and the tax withheld from it, is back in your available balance. Confirm or correct "
        "your payout account (PUT /api/v1/distributors/{distributor_id}/payout-account); it is paid again in the next "
        "payout run after that.",
    ),
    "debt_created": _t(
        "您有一笔欠款 {amount}",
        "因{reason}，您欠平台 {amount}。欠款将从您之后的佣金中自动扣除，"
        "也可通过还款直接结清；有欠款时不能注销账户。",
        "You owe {amount}",
        "Because {reason}, you owe the platform {amount}. It is netted from your next "
        "commissions, or you can repay it directly; an account with debt cannot be closed.",
    ),
    "debt_repaid": _t(
        "已收到还款 {amount}",
        "已收到您的还款 {amount}，剩余欠款 {owed_after}。",
        "Repayment received: {amount}",
        "We received your repayment of {amount}; you still owe {owed_after}.",
    ),
    "rank_up": _t(
        "恭喜升级为{to}",
        "您的等级已由{from_rank}升为{to}，新订单的佣金按新等级的比例计算。",
        "You reached {to}",
        "Your rank rose from {from_rank} to {to}; new orders earn commission at the {to} rates.",
    ),
    "rank_down": _t(
        "等级调整为{to}",
        "根据最近 {period_days} 天的销售额，您的等级已由{from_rank}调整为{to}。"
        "达到更高等级的销售门槛后会自动升级。",
        "Your rank is now {to}",
        "Based on your sales over the last {period_days} days your rank moved from "
        "{from_rank} to {to}. Reaching the thresholds again upgrades you at once.",
    ),
    "rank_downgrade_warning": _t(
        "等级即将下调提醒",
        "如果 {days} 天内没有新的销售，您的等级将在 {evaluate_on} 的评估中由{rank}降为{to}。"
        "保持等级还需：{needed}。",
        "Your rank may go down",
        "Without new sales in the next {days} days your rank goes from {rank} to {to} at "
        "the evaluation on {evaluate_on}. To keep it you need {needed}.",
    ),
    "points_expiring": _t(
        "积分即将过期",
        "您有 {points} 积分将于 {expires_at} 过期（先到期的积分先过期）。可在过期前兑换礼品或抵扣消费。",
        "Your points expire soon",
        "{points} of your points expire on {expires_at} (the oldest points first). "
        "Redeem them for gifts or against a purchase before then.",
    ),
    "rank_refund_warning": _t(
        "退货影响等级提醒",
        "订单退款后，您最近 {days} 天的销售额已低于{rank}的门槛，若不补足，将在下次评估中降为{to}。"
        "保持等级还需：{needed}。",
        "A refund puts your rank at risk",
        "After a refund your sales over the last {days} days are below the "
        "threshold of {rank}; unless you make it up you go to {to} at the next evaluation. To keep it you need "
        "{needed}.",
    ),
    "payout_account_changed": _t(
        "收款账户已更改",
        "您的收款账户已于 {at} 更改为 {account}。如果不是您本人操作，请立即联系平台并轮换 API 密钥。",
        "Your payout account was changed",
        "Your payout account was changed on {at} to {account}. If this was "
        "not you, contact us at once and rotate your API key.",
    ),
    "contact_changed": _t(
        "联系方式已更改",
        "您的{contact}已于 {at} 由 {previous} 更改为 {current}。如果不是您本人操作，请立即联系平台并轮换 API 密钥。",
        "Your contact details were changed",
        "Your {contact} was changed on {at} from {previous} to {current}. "
        "If this was not you, contact us at once and rotate your API key.",
    ),
    "verification_code": _t(
        "验证码 {code}",
        "您正在{purpose}，验证码 {code}，{minutes} 分钟内有效。请勿将验证码告诉任何人；如非本人操作请忽略。",
        "Your code {code}",
        "Your code for {purpose} is {code}; it is valid for {minutes} minutes. Never share it; "
        "if this was not you, ignore this message.",
    ),
    "api_key_replaced": _t(
        "您的 API 密钥已更换",
        "您的 API 密钥已于 {at} 通过{how}更换，旧密钥已全部失效。如果不是您本人操作，请立即联系平台。",
        "Your API key was replaced",
        "Your API key was replaced on {at} through {how}; every old key stopped "
        "working. If this was not you, contact us at once.",
    ),
    "closure_pending_payout": _t(
        "注销申请已受理",
        "您的注销申请已受理。账户余额 {amount} 将在下一次打款中支付，打款完成后账户关闭，"
        "个人信息将在关闭 {retention_days} 天后删除。",
        "Closure requested",
        "Your closure request is accepted. Your balance of {amount} is paid in the next "
        "payout run; the account then closes and your personal data is erased {retention_days} days later.",
    ),
    "account_closed": _t(
        "账户已注销",
        "您的账户已注销，分销卡已作废。个人信息将于 {erase_after} 删除；财务记录依法保留。",
        "Your account is closed",
        "Your account is closed and your card cancelled. Your personal data is erased "
        "on {erase_after}; financial records are kept as the law requires.",
    ),
}

MANDATORY_KINDS = frozenset(
    {
        # security: the owner must hear of these on every channel they have, whatever they muted
        "verification_code",
        "payout_account_changed",
        "api_key_replaced",
        "contact_changed",
        # legal: a decision about their rights or money with a deadline or a consequence (PIPL
        # erasure, appeal windows, debt)
        "hold_placed",
        "appeal_info_requested",
        "appeal_decided",
        "debt_created",
        "closure_pending_payout",
        "account_closed",
    }
)
"""Kinds a distributor cannot mute (``PUT /me/notification-preferences`` refuses them with 422; the
fan-out ignores them in ``muted_kinds``). Turning a whole channel off still stops it."""

OUTCOMES = {
    "cleared": ("已解除，冻结佣金将释放", "cleared, withheld commissions are released"),
    "confirmed": ("确认违规", "confirmed as a violation"),
}
DECISIONS = {
    "approved": ("通过", "approved"),
    "rejected": ("驳回", "rejected"),
    "escalated": ("已升级处理", "escalated"),
}


def _pick(table: dict[str, tuple[str, str]], key: Any, locale: str) -> str:
    pair = table.get(str(key))
    if pair is None:
        return str(key) if key is not None else "-"
    return pair[0] if locale == "zh" else pair[1]


def amount_words(value: Any, currency: str | None, locale: str) -> str:
    """``12345`` (minor units) or ``"123.45"`` -> ``123.45 元`` / ``CNY 123.45``."""
    if value is None:
        return "-"
    if isinstance(value, int):
        sign = "-" if value < 0 else ""
        text = f"{sign}{abs(value) // 100}.{abs(value) % 100:02d}"
    else:
        text = str(value)
    currency = currency or "CNY"
    if locale == "zh":
        return f"{text} 元" if currency == "CNY" else f"{text} {currency}"
    return f"{currency} {text}"


def _when(value: Any) -> str:
    if isinstance(value, str):
        if len(value) == 10:  # a date
            return value
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return "-" if value is None else str(value)


class _Params(dict):
    def __missing__(self, key: str) -> str:
        return "-"


def words(kind: str, locale: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters of ``kind`` put into words for ``locale``."""
    zh = locale == "zh"
    p: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
    currency = params.get("currency")
    for key in ("amount", "owed_after"):
        if key in params:
            p[key] = amount_words(params[key], currency, locale)
    for key in ("starts_at", "ends_at", "at", "erase_after", "evaluate_on", "expires_at"):
        if key in params:
            p[key] = _when(params[key])
    if "reason" in params:
        p["reason"] = _pick(REASONS, params["reason"], locale)
    for key in ("to", "from_rank", "rank"):
        if key in params:
            p[key] = _pick(RANK_NAMES, params[key], locale)
    if "how" in params:
        p["how"] = _pick(HOW_REPLACED, params["how"], locale)
    if "contact" in params:
        p["contact"] = _pick(CONTACTS, params["contact"], locale)
    if "purpose" in params:
        p["purpose"] = _pick(PURPOSES, params["purpose"], locale)
    if "outcome" in params:
        p["outcome"] = _pick(OUTCOMES, params["outcome"], locale)
    if "decision" in params:
        p["decision"] = _pick(DECISIONS, params["decision"], locale)
    if kind == "hold_placed":
        if params.get("appealable"):
            p["appeal"] = (
                "如有异议，请在 14 天内提交申诉：POST /api/v1/appeals {hold_id: %s}；可附证据，审核时限 3 个工作日。"
                if zh
                else "If you disagree, appeal within 14 days: POST /api/v1/appeals {hold_id: %s} "
                "with your evidence; a reviewer answers within 3 business days."
            ) % params.get("hold_id")
        else:
            p["appeal"] = (
                "此暂停不可申诉，到期自动恢复。"
                if zh
                else "This suspension cannot be appealed; it ends by itself."
            )
    if kind == "hold_lifted":
        p["next"] = "您可以继续销售。" if zh else "You can sell again."
    if kind == "appeal_decided":
        decided = params.get("decision")
        if decided == "approved":
            p["next"] = (
                "该暂停已解除，冻结佣金将释放。"
                if zh
                else "The hold is lifted and its withheld money released."
            )
        elif decided == "rejected":
            p["next"] = (
                "暂停维持；如有新证据，可在 14 天内再次申诉，否则冻结佣金将被没收。"
                if zh
                else "The hold stays; with new evidence you may appeal again within 14 days, otherwise the "
                "withheld money is forfeited."
            )
        else:
            p["next"] = (
                "高级审核员将继续处理，无需操作。" if zh else "A senior reviewer takes over; nothing to do."
            )
    if kind in ("rank_downgrade_warning", "rank_refund_warning") and "needed" in params:
        p["needed"] = params["needed"]
    return p


def render(kind: str, locale: str, params: dict[str, Any]) -> tuple[str, str]:
    locale = locale if locale in LOCALES else "zh"
    template = TEMPLATES[kind][locale]
    values = _Params(words(kind, locale, params))
    return template.subject.format_map(values), template.body.format_map(values)
