"""Payout accounts: where a distributor's money goes. Stored encrypted, shown masked, every change
audited; a change by the owner needs a one-time code, notifies (event ``payout_account.changed``)
and starts a cooling-off period during which payout runs skip the distributor."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit import audit, outbox
from distnet.kit.auth import Principal, Role, ensure_self_or_staff
from distnet.kit.crypto import decrypt, encrypt, keyed_hash
from distnet.kit.errors import ValidationFailed
from distnet.kit.ratelimit import RateLimiter
from distnet.models import Distributor, PayoutAccount, TaxIdentity
from distnet.network.errors import DistributorClosed, DistributorNotFound
from distnet.payout_accounts import rules
from distnet.payout_accounts import schemas as s
from distnet.payout_accounts.errors import PayoutAccountNotFound, VerificationCodeRequired
from distnet.settings import Settings
from distnet.verification import service as verification
from distnet.verification.service import IssuedCode

CODE_PURPOSE = "payout_account"


async def _now(session: AsyncSession) -> datetime:
    return await session.scalar(text("SELECT clock_timestamp()"))


async def current(session: AsyncSession, *, distributor_id: int, lock: bool = False) -> PayoutAccount | None:
    stmt = select(PayoutAccount).where(
        PayoutAccount.distributor_id == distributor_id, PayoutAccount.superseded_at.is_(None)
    )
    if lock:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt.execution_options(populate_existing=True))


def view(secret: bytes, account: PayoutAccount, now: datetime) -> s.PayoutAccount:
    return s.PayoutAccount(
        distributor_id=account.distributor_id,
        version_id=account.id,
        method=account.method,  # type: ignore[arg-type]
        holder_name=rules.mask_name(decrypt(secret, account.holder_name_enc)),
        account_number=("****" + account.account_last4) if account.account_last4 else None,
        resident_id=("****" + account.resident_id_last4) if account.resident_id_last4 else None,
        bank_name=account.bank_name,
        bank_branch=account.bank_branch,
        status=account.status,  # type: ignore[arg-type]
        cooling_until=account.cooling_until,
        cooling_off=account.cooling_until > now,
        created_at=account.created_at,
    )


async def get_account(
    session: AsyncSession, *, settings: Settings, principal: Principal, distributor_id: int
) -> s.PayoutAccount:
    ensure_self_or_staff(principal, distributor_id, Role.finance, Role.finance_approver)
    account = await current(session, distributor_id=distributor_id)
    if account is None or account.status == "erased":
        raise PayoutAccountNotFound(f"distributor {distributor_id} has no payout account")
    return view(settings.secret_key, account, await _now(session))


def _checked(data: s.PayoutAccountPut) -> tuple[str, str]:
    errors = []
    number = resident = ""
    try:
        number = rules.account_number(data.method, data.account_number)
    except rules.FieldInvalid as exc:
        errors.append({"field": exc.field, "message": exc.message})
    try:
        resident = rules.resident_id(data.resident_id)
    except rules.FieldInvalid as exc:
        errors.append({"field": exc.field, "message": exc.message})
    if data.method == "bank_card" and not (data.bank_name or "").strip():
        errors.append({"field": "bank_name", "message": "a bank card needs the bank's name"})
    if data.method != "bank_card" and (data.bank_name or data.bank_branch):
        errors.append({"field": "bank_name", "message": "only a bank card has a bank and branch"})
    if errors:
        raise ValidationFailed("the payout account is not valid", errors=errors)
    return number, resident


async def request_code(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal,
    distributor_id: int,
    limiter: RateLimiter | None = None,
) -> IssuedCode:
    """``POST /distributors/{id}/payout-account/code`` (the owner): a one-time code for changing
    the payout account, sent only to a VERIFIED phone or e-mail (409 ``no-verified-contact``
    otherwise): the inbox is read with the API key, and a stolen key is the takeover this code stops."""
    if principal.distributor_id != distributor_id:
        ensure_self_or_staff(principal, distributor_id)  # another distributor: 404
        raise ValidationFailed(
            "only the owner asks for a code; staff change a payout account without one",
            field="distributor_id",
        )
    return await verification.issue_code(
        session,
        settings=settings,
        distributor_id=distributor_id,
        purpose=CODE_PURPOSE,
        require_contact=True,
        limiter=limiter,
    )


async def _check_code(
    session: AsyncSession,
    *,
    settings: Settings,
    distributor_id: int,
    code: str | None,
    limiter: RateLimiter | None,
) -> None:
    """The owner proves the change with a one-time code sent to their verified contact."""
    if not code:
        raise VerificationCodeRequired(
            "changing the payout account needs the one-time code from "
            f"POST /api/v1/distributors/{distributor_id}/payout-account/code",
            extra={"errors": [{"field": "code", "message": "required to change an existing payout account"}]},
        )
    await verification.check_code(
        session,
        settings=settings,
        distributor_id=distributor_id,
        purpose=CODE_PURPOSE,
        code=code,
        limiter=limiter,
    )


async def put_account(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal,
    distributor_id: int,
    data: s.PayoutAccountPut,
    limiter: RateLimiter | None = None,
) -> tuple[s.PayoutAccount, bool]:
    """Set or change the payout account. Returns the view and whether it was the first one."""
    ensure_self_or_staff(principal, distributor_id, Role.admin)
    number, resident = _checked(data)
    d = await session.scalar(select(Distributor).where(Distributor.id == distributor_id).with_for_update())
    if d is None:
        raise DistributorNotFound(f"no distributor {distributor_id}")
    if d.status == "closed":
        raise DistributorClosed("the account is closed")
    previous = await current(session, distributor_id=distributor_id, lock=True)
    now = await _now(session)
    if previous is not None and principal.distributor_id == distributor_id:
        await _check_code(
            session, settings=settings, distributor_id=distributor_id, code=data.code, limiter=limiter
        )
    secret = settings.secret_key
    cooling_until = (
        now if previous is None else now + timedelta(hours=settings.business.payout_account_cooling_hours)
    )
    if previous is not None:
        await session.execute(
            update(PayoutAccount)
            .where(PayoutAccount.id == previous.id)
            .values(superseded_at=now, status="superseded" if previous.status != "erased" else "erased")
        )
    account = PayoutAccount(
        distributor_id=distributor_id,
        method=data.method,
        holder_name_enc=encrypt(secret, data.holder_name.strip()),
        account_number_enc=encrypt(secret, number),
        account_hash=keyed_hash(secret, "payout_account", number),
        account_last4=rules.last4(number),
        bank_name=(data.bank_name or "").strip() or None,
        bank_branch=(data.bank_branch or "").strip() or None,
        resident_id_enc=encrypt(secret, resident),
        resident_id_last4=rules.last4(resident),
        status="active",
        cooling_until=cooling_until,
        created_by=principal.actor,
    )
    session.add(account)
    await session.flush()
    await session.execute(
        insert(TaxIdentity)
        .values(
            distributor_id=distributor_id,
            name_enc=account.holder_name_enc,
            resident_id_enc=account.resident_id_enc,
        )
        .on_conflict_do_update(
            index_elements=["distributor_id"],
            set_={
                "name_enc": account.holder_name_enc,
                "resident_id_enc": account.resident_id_enc,
                "updated_at": now,
            },
        )
    )
    masked_before = (
        None
        if previous is None
        else {
            "version_id": previous.id,
            "method": previous.method,
            "account_last4": previous.account_last4,
            "status": previous.status,
        }
    )
    await audit.record(
        session,
        principal,
        "payout_account.changed" if previous else "payout_account.created",
        "distributor",
        distributor_id,
        before=masked_before,
        after={
            "version_id": account.id,
            "method": account.method,
            "account_last4": account.account_last4,
            "cooling_until": cooling_until.isoformat(),
        },
    )
    # the notification consumer tells the owner on every channel, the previous contact too
    await outbox.emit(
        session,
        "payout_account.changed",
        {
            "distributor_id": distributor_id,
            "version_id": account.id,
            "method": account.method,
            "account_last4": account.account_last4,
            "account_masked": rules.mask(number),
            "previous_version_id": previous.id if previous else None,
            "cooling_until": cooling_until.isoformat(),
            "first": previous is None,
        },
        distributor_id=distributor_id,
    )
    await session.refresh(account)
    return view(secret, account, now), previous is None


async def record_unconfirmed(
    session: AsyncSession, *, settings: Settings, distributor_id: int, account_number: str | None
) -> None:
    """A bank account given at registration is never checked: it becomes a bank card payout
    account that payouts skip until the owner confirms it with full details."""
    if not account_number or not account_number.strip():
        return
    secret = settings.secret_key
    session.add(
        PayoutAccount(
            distributor_id=distributor_id,
            method="bank_card",
            account_number_enc=encrypt(secret, account_number.strip()),
            account_last4=rules.last4(account_number.strip()),
            status="needs_confirmation",
            cooling_until=await _now(session),
            created_by="registration",
        )
    )
    await session.flush()
