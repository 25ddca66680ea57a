"""Everything the system holds about a distributor, for that distributor (PIPL right of access):
profile with its personal fields decrypted, card history, keys, orders, commissions, ledger
statement, holds, appeals and their messages, notifications (every channel, in the owner's
words) and preferences, replaced contacts (masked: whoever holds the key now may not be the owner),
consents, payout accounts (every version, decrypted) and payouts, and what was done to the account. Each section reads by the owner's id only, so nothing of anyone else can enter it
except the upline's code and masked name on orders and the sponsor's, as the API shows them."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit import audit
from distnet.kit.auth import Principal
from distnet.kit.crypto import decrypt, decrypt_many
from distnet.kit.masking import mask_name
from distnet.kit.money import format_amount
from distnet.network.service import get_distributor, visible_distributor
from distnet.notifications.service import render_notice
from distnet.orders.schemas import PersonRef
from distnet.orders.views import seller_order_views
from distnet.payout_accounts.service import current as current_payout_account
from distnet.personal_data import repository as repo
from distnet.personal_data.schemas import (
    ExportAppeal,
    ExportAppealMessage,
    ExportAuditEntry,
    ExportBalance,
    ExportCard,
    ExportCommission,
    ExportConsent,
    ExportKey,
    ExportNotification,
    ExportNotificationPreferences,
    ExportPayout,
    ExportPayoutAccount,
    ExportPosting,
    ExportPreviousContact,
    ExportProfile,
    PersonalDataExport,
)
from distnet.risk.holds import get_hold, hold_view
from distnet.settings import Settings
from distnet.verification.service import mask

FORMAT = "distnet-personal-data/1"


async def export(
    session: AsyncSession, *, settings: Settings, principal: Principal, distributor_id: int
) -> PersonalDataExport:
    """The owner's copy. Audited (``distributor.data_exported``): personal data left the system."""
    d = await visible_distributor(session, principal, distributor_id)
    secret = settings.secret_key
    # contact fields of the notification domain are read where the model has them
    # the payout account (its current version) replaced registration's bank_account (migration 0070)
    account = await current_payout_account(session, distributor_id=d.id)
    phone, device, ip, payment, bank, email = decrypt_many(
        secret,
        [
            d.phone_enc,
            d.device_enc,
            d.ip_enc,
            d.payment_enc,
            account.account_number_enc if account else None,
            getattr(d, "email_enc", None),
        ],
    )
    sponsor = None
    if d.sponsor_id is not None:
        s = await get_distributor(session, distributor_id=d.sponsor_id)
        sponsor = PersonRef(code=s.code, name=mask_name(s.name, erased=s.erased_at is not None))
    profile = ExportProfile(
        id=d.id,
        code=d.code,
        name=d.name,
        sponsor=sponsor,
        rank=d.rank,
        region=d.region,
        status=d.status,
        joined_at=d.joined_at,
        closed_at=d.closed_at,
        erase_after=d.erase_after,
        erased_at=d.erased_at,
        phone=phone,
        device_id=device,
        ip=ip,
        payment_fingerprint=payment,
        bank_account=bank,
        email=email,
        phone_verified_at=getattr(d, "phone_verified_at", None),
        email_verified_at=getattr(d, "email_verified_at", None),
        locale=getattr(d, "locale", None),
    )
    own_keys = await repo.owner_key_ids(session, d.id)
    events: dict[int, list[ExportAppealMessage]] = {}
    for e in await repo.appeal_events(session, d.id):
        events.setdefault(e.appeal_id, []).append(
            ExportAppealMessage(
                at=e.at,
                by=_who(e.actor, None, d, own_keys),
                action=e.action,
                from_status=e.from_status,
                to_status=e.to_status,
                note=e.note,
                attachments=list(e.attachments or []),
            )
        )
    holds = [
        await hold_view(session, await get_hold(session, h), full=False, settings=settings)
        for h in await repo.hold_ids(session, d.id)
    ]
    prefs = await repo.notification_preferences(session, d.id)
    result = PersonalDataExport(
        format=FORMAT,
        exported_at=datetime.now(UTC),
        profile=profile,
        cards=[ExportCard(**r._mapping) for r in await repo.cards(session, d.id)],
        api_keys=[
            ExportKey(
                name=r.name,
                prefix=r.prefix,
                roles=list(r.roles),
                created_at=r.created_at,
                revoked_at=r.revoked_at,
            )
            for r in await repo.api_keys(session, d.id)
        ],
        orders=await seller_order_views(session, settings, d.id, await repo.order_rows(session, d.id)),
        commissions=[
            ExportCommission(
                id=r.id,
                order_id=r.order_id,
                level=r.level,
                rank_used=r.rank_used,
                rate_bps=r.rate_bps,
                base=format_amount(r.base),
                amount=format_amount(r.amount),
                reversed=format_amount(r.reversed),
                status=r.status,
                hold_until=r.hold_until,
                available_at=r.available_at,
                paid_at=r.paid_at,
                withheld_hold_id=r.withheld_hold_id,
                created_at=r.created_at,
            )
            for r in await repo.commissions(session, d.id)
        ],
        ledger=[
            ExportPosting(
                transaction_id=r.transaction_id,
                kind=r.kind,
                account=r.account,
                currency=r.currency,
                amount=format_amount(r.amount),
                commission_id=r.commission_id,
                memo=r.memo,
                created_at=r.created_at,
            )
            for r in await repo.postings(session, d.id)
        ],
        balances=[
            ExportBalance(
                account=r.account,
                currency=r.currency,
                balance=format_amount(-r.balance if r.account == "owed" else r.balance),
            )
            for r in await repo.balances(session, d.id)
        ],
        holds=holds,
        appeals=[
            ExportAppeal(
                id=r.id,
                hold_id=r.hold_id,
                statement=r.statement,
                evidence=list(r.evidence or []),
                status=r.status,
                submission_no=r.submission_no,
                created_at=r.created_at,
                decided_at=r.decided_at,
                messages=events.get(r.id, []),
            )
            for r in await repo.appeals(session, d.id)
        ],
        notifications=[_notification(settings, d.locale, r) for r in await repo.notifications(session, d.id)],
        notification_preferences=ExportNotificationPreferences(
            email_enabled=prefs.email_enabled if prefs else True,
            sms_enabled=prefs.sms_enabled if prefs else True,
            muted_kinds=list(prefs.muted_kinds) if prefs else [],
        ),
        previous_contacts=[_previous_contact(secret, r) for r in await repo.previous_contacts(session, d.id)],
        consents=[ExportConsent(**r._mapping) for r in await repo.consents(session, d.id)],
        payout_accounts=[_payout_account(secret, r) for r in await repo.payout_accounts(session, d.id)],
        payouts=[
            ExportPayout(
                item_id=r.id,
                run_id=r.run_id,
                gross=format_amount(r.amount),
                tax=format_amount(r.tax),
                net=format_amount(r.amount - r.tax),
                currency=r.currency,
                status=r.status,
                tax_month=r.tax_month,
                bank_reference=r.bank_reference,
                failure_reason=r.failure_reason,
                result_at=r.result_at,
                return_reference=r.return_reference,
                return_reason=r.return_reason,
                returned_at=r.returned_at,
            )
            for r in await repo.payouts(session, d.id)
        ],
        audit=[
            ExportAuditEntry(at=r.at, action=r.action, by=_who(r.actor, r.actor_key_id, d, own_keys))
            for r in await repo.audit_entries(session, d.id)
        ],
    )
    await audit.record(
        session,
        principal,
        "distributor.data_exported",
        "distributor",
        d.id,
        after={
            "sections": {
                "orders": len(result.orders),
                "commissions": len(result.commissions),
                "ledger": len(result.ledger),
                "holds": len(holds),
                "appeals": len(result.appeals),
                "notifications": len(result.notifications),
                "consents": len(result.consents),
                "payouts": len(result.payouts),
            }
        },
    )
    return result


def _notification(settings: Settings, locale: str | None, row: dict[str, Any]) -> ExportNotification:
    subject, body = render_notice(settings, locale or "zh", {**row, "secret_enc": None})
    return ExportNotification(
        id=row["id"],
        kind=row["kind"],
        channel=row["channel"],
        subject=subject,
        body=body,
        status=row["status"],
        created_at=row["created_at"],
        sent_at=row["sent_at"],
        read_at=row["read_at"],
        failure=row["last_error"],
    )


def _previous_contact(secret: bytes, r: Any) -> ExportPreviousContact:
    address = decrypt(secret, r.address_enc)
    return ExportPreviousContact(
        channel=r.channel, address=mask(r.channel, address) if address else None, replaced_at=r.replaced_at
    )


def _payout_account(secret: bytes, r: Any) -> ExportPayoutAccount:
    holder, number, resident = decrypt_many(
        secret, [r.holder_name_enc, r.account_number_enc, r.resident_id_enc]
    )
    return ExportPayoutAccount(
        version_id=r.id,
        method=r.method,
        holder_name=holder,
        account_number=number,
        bank_name=r.bank_name,
        bank_branch=r.bank_branch,
        resident_id=resident,
        status=r.status,
        cooling_until=r.cooling_until,
        created_at=r.created_at,
        superseded_at=r.superseded_at,
    )


def _who(actor: str, key_id: int | None, d: Any, own_keys: set[int]) -> str:
    """Staff are not named in the owner's copy (their identity is not the owner's data)."""
    if key_id is None and actor.startswith("key:"):  # appeal events keep the actor string only
        key_id = int(actor.split(":")[1]) if actor.split(":")[1].isdigit() else None
    if key_id is not None and key_id in own_keys:
        return "you"
    if actor == "system" or actor.startswith("system"):
        return "system"
    return "staff"


# -- ZIP of CSVs ---------------------------------------------------------------------------


def to_zip(doc: PersonalDataExport) -> bytes:
    """The same document as one CSV per section (nested values as JSON in their cell) and the
    whole document as JSON beside them."""
    plain = msgspec.to_builtins(doc)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export.json", msgspec.json.encode(doc))
        for section, value in plain.items():
            rows = [value] if isinstance(value, dict) else value if isinstance(value, list) else None
            if rows is None:
                continue
            archive.writestr(f"{section}.csv", _csv(rows))
    return buffer.getvalue()


def _csv(rows: list[Any]) -> str:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return msgspec.json.encode(value).decode()
    text = str(value)
    # a cell a spreadsheet would run as a formula is written as text
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
