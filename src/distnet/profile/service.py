"""A distributor's own contact data, locale and consents (seed 004).

- Consent at registration: the terms and privacy policy versions (``DISTNET_TERMS_VERSION``,
  ``DISTNET_PRIVACY_VERSION``), the time and the channel are recorded; marketing and SMS notices
  are optional, listed and withdrawable (audited).
- Verified contact: a phone or e-mail, given at registration or changed later, is confirmed by a
  one-time code sent to it before any notice goes there. A new address replaces the old one only
  when confirmed; a replaced verified address is kept encrypted (``previous_contact``), told of the
  change (``contact_changed``, mandatory) and, for ``PREVIOUS_CONTACT_NOTICE_DAYS``, of payout
  account changes too.
- ``DISTNET_REQUIRE_VERIFIED_CONTACT=1`` makes a verified phone or e-mail a condition of the first
  payout: the payout run skips such a distributor with the reason ``contact_unverified``
  (``payouts.repository.CREATE_ITEMS``, the same rule as ``payout_contact_condition``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from distnet.db import rowcount
from distnet.kit import audit
from distnet.kit.auth import Principal
from distnet.kit.crypto import decrypt, encrypt, keyed_hash
from distnet.kit.errors import ValidationFailed
from distnet.kit.ratelimit import RateLimiter
from distnet.models.notify import CONSENT_PURPOSES
from distnet.notifications.service import notify, notify_previous_contacts
from distnet.profile import repository as repo
from distnet.profile.errors import ConsentRequired
from distnet.profile.schemas import ConsentView, ProfileView, RegistrationConsent
from distnet.settings import Settings
from distnet.verification.service import IssuedCode, check_code, issue_code, mask

REQUIRED_CONSENTS = ("terms", "privacy")
_PHONE = re.compile(r"^\+?[0-9 ()-]{4,31}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
CHANNEL_OF = {"phone": "sms", "email": "email"}


# --------------------------------------------------------------------------- registration


async def record_registration(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal,
    distributor_id: int,
    consent: RegistrationConsent | None,
    phone: str | None,
    email: str | None,
    limiter: RateLimiter | None = None,
) -> list[IssuedCode]:
    """Record the consents given at registration and send a code to each contact given (the card
    works meanwhile). Self-registration must consent to the current terms and privacy policy."""
    if consent is None:
        if not principal.is_staff:
            raise ValidationFailed("consent to the terms and the privacy policy is required", field="consent")
    else:
        errors = [
            {"field": f"consent.{kind}_version", "message": f"the current {kind} version is {current}"}
            for kind, given, current in (
                ("terms", consent.terms_version, settings.notify.terms_version),
                ("privacy", consent.privacy_version, settings.notify.privacy_version),
            )
            if given != current
        ]
        if errors:
            raise ValidationFailed("; ".join(e["message"] for e in errors), errors=errors)
        rows = [("terms", consent.terms_version), ("privacy", consent.privacy_version)]
        rows += [
            (p, settings.notify.privacy_version)
            for p, chosen in (("marketing", consent.marketing), ("sms", consent.sms))
            if chosen
        ]
        for purpose, version in rows:
            await _grant(
                session,
                distributor_id=distributor_id,
                purpose=purpose,
                version=version,
                channel=consent.channel,
            )
        await audit.record(
            session,
            principal,
            "consent.given",
            "distributor",
            distributor_id,
            after={
                "purposes": [p for p, _ in rows],
                "channel": consent.channel,
                "terms_version": consent.terms_version,
                "privacy_version": consent.privacy_version,
            },
        )
    if email:
        await session.execute(
            repo.SET_EMAIL,
            {
                "e": encrypt(settings.secret_key, email),
                "h": keyed_hash(settings.secret_key, "email", email),
                "d": distributor_id,
            },
        )
    issued = []
    for channel, value in (("phone", phone), ("email", email)):
        if value:
            issued.append(
                await issue_code(
                    session,
                    settings=settings,
                    distributor_id=distributor_id,
                    purpose=f"contact_{channel}",
                    destination=(CHANNEL_OF[channel], value),
                    limiter=limiter,
                )
            )
    return issued


# --------------------------------------------------------------------------- profile and contact


async def profile(session: AsyncSession, *, settings: Settings, distributor_id: int) -> ProfileView:
    row = (await session.execute(repo.PROFILE, {"d": distributor_id})).one()
    phone, email = decrypt(settings.secret_key, row.phone_enc), decrypt(settings.secret_key, row.email_enc)
    return ProfileView(
        distributor_id,
        row.locale,
        mask("sms", phone) if phone else None,
        row.phone_verified_at is not None and phone is not None,
        mask("email", email) if email else None,
        row.email_verified_at is not None and email is not None,
    )


async def set_locale(
    session: AsyncSession, *, settings: Settings, principal: Principal, distributor_id: int, locale: str
) -> ProfileView:
    before = await session.scalar(repo.LOCALE, {"d": distributor_id})
    await session.execute(repo.SET_LOCALE, {"l": locale, "d": distributor_id})
    if before != locale:
        await audit.record(
            session,
            principal,
            "profile.locale_changed",
            "distributor",
            distributor_id,
            before={"locale": before},
            after={"locale": locale},
        )
    return await profile(session, settings=settings, distributor_id=distributor_id)


def _check_value(channel: str, value: str) -> str:
    value = value.strip()
    if not (_PHONE if channel == "phone" else _EMAIL).match(value):
        raise ValidationFailed(
            f"not a valid {'phone number' if channel == 'phone' else 'e-mail address'}", field="value"
        )
    return value


async def change_contact(
    session: AsyncSession,
    *,
    settings: Settings,
    distributor_id: int,
    channel: str,
    value: str,
    limiter: RateLimiter | None = None,
) -> IssuedCode:
    """Send a code to the new address; it becomes the contact when the code is confirmed."""
    value = _check_value(channel, value)
    return await issue_code(
        session,
        settings=settings,
        distributor_id=distributor_id,
        purpose=f"contact_{channel}",
        destination=(CHANNEL_OF[channel], value),
        limiter=limiter,
    )


async def verify_contact(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal,
    distributor_id: int,
    channel: str,
    code: str,
    limiter: RateLimiter | None = None,
) -> ProfileView:
    checked = await check_code(
        session,
        settings=settings,
        distributor_id=distributor_id,
        purpose=f"contact_{channel}",
        code=code,
        limiter=limiter,
    )
    value = checked.destination or ""
    column = "phone" if channel == "phone" else "email"
    new_hash = keyed_hash(settings.secret_key, column, value)
    before = (await session.execute(repo.lock_contact(column), {"d": distributor_id})).one()
    previous_id = None
    if before.enc is not None and before.verified_at is not None and before.hash != new_hash:
        # a verified address is replaced: keep it (encrypted) for the security notices
        previous_id = await session.scalar(
            repo.INSERT_PREVIOUS_CONTACT,
            {"d": distributor_id, "c": CHANNEL_OF[channel], "enc": before.enc, "hash": before.hash},
        )
    await session.execute(
        repo.set_verified_contact(column),
        {"enc": encrypt(settings.secret_key, value), "hash": new_hash, "d": distributor_id},
    )
    await audit.record(
        session,
        principal,
        f"profile.{column}_verified",
        "distributor",
        distributor_id,
        after={column: mask(CHANNEL_OF[channel], value)},
    )
    if previous_id is not None:
        old_value = decrypt(settings.secret_key, before.enc) or ""
        params = {
            "contact": column,
            "at": datetime.now(UTC).isoformat(),
            "previous": mask(CHANNEL_OF[channel], old_value),
            "current": mask(CHANNEL_OF[channel], value),
        }
        key = f"contact_changed:{previous_id}"
        # the owner (inbox and current contacts) and, above all, the address that was replaced
        await notify(
            session, distributor_id=distributor_id, event_key=key, kind="contact_changed", params=params
        )
        await notify_previous_contacts(
            session,
            distributor_id=distributor_id,
            event_key=key,
            kind="contact_changed",
            params=params,
            previous_contact_id=previous_id,
        )
    return await profile(session, settings=settings, distributor_id=distributor_id)


# --------------------------------------------------------------------------- consents


async def _grant(
    session: AsyncSession, *, distributor_id: int, purpose: str, version: str, channel: str
) -> bool:
    inserted = await session.execute(
        repo.GRANT_CONSENT, {"d": distributor_id, "p": purpose, "v": version, "c": channel}
    )
    return bool(rowcount(inserted))


async def consents(session: AsyncSession, *, distributor_id: int) -> list[ConsentView]:
    rows = await session.execute(repo.CONSENTS, {"d": distributor_id})
    return [
        ConsentView(
            r.purpose,
            r.document_version,
            r.channel,
            r.granted_at,
            r.withdrawn_at,
            r.purpose in REQUIRED_CONSENTS,
        )
        for r in rows
    ]


async def grant(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal,
    distributor_id: int,
    purpose: str,
    document_version: str | None,
) -> list[ConsentView]:
    assert purpose in CONSENT_PURPOSES
    if await _grant(
        session,
        distributor_id=distributor_id,
        purpose=purpose,
        version=document_version or settings.notify.privacy_version,
        channel="api",
    ):
        await audit.record(
            session, principal, "consent.given", "distributor", distributor_id, after={"purposes": [purpose]}
        )
    return await consents(session, distributor_id=distributor_id)


async def withdraw(
    session: AsyncSession, *, principal: Principal, distributor_id: int, purpose: str
) -> list[ConsentView]:
    if purpose in REQUIRED_CONSENTS:
        raise ConsentRequired(
            f"the {purpose} consent is required to use the service; close the account "
            "(POST /api/v1/me/closure) to end it"
        )
    if purpose not in CONSENT_PURPOSES:
        raise ValidationFailed(f"unknown consent {purpose!r}", field="purpose")
    withdrawn = await session.execute(repo.WITHDRAW_CONSENT, {"d": distributor_id, "p": purpose})
    if rowcount(withdrawn):
        await audit.record(
            session, principal, "consent.withdrawn", "distributor", distributor_id, after={"purpose": purpose}
        )
    return await consents(session, distributor_id=distributor_id)


# --------------------------------------------------------------------------- payout condition


def payout_contact_condition(settings: Settings) -> str:
    """SQL over ``distributor d`` for the payout run: with ``DISTNET_REQUIRE_VERIFIED_CONTACT`` a
    first payout needs a verified phone or e-mail; later payouts do not."""
    return repo.PAYOUT_CONTACT_CONDITION if settings.notify.require_verified_contact else "TRUE"


async def contact_verified_for_payout(
    session: AsyncSession, *, settings: Settings, distributor_id: int
) -> bool:
    return bool(
        await session.scalar(
            repo.contact_condition_holds(payout_contact_condition(settings)), {"d": distributor_id}
        )
    )
