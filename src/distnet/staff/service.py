"""Staff are people: each holds API keys (roles live on the keys), a TOTP second factor for the
console, and is named by the audit log. Four eyes compares people (``Principal.is_person``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit.errors import ValidationFailed
from distnet.kit.keys import STAFF, create_key
from distnet.models import ApiKey, Staff
from distnet.staff.errors import StaffNameTaken, StaffNotFound


@dataclass(frozen=True, slots=True)
class StaffMember:
    id: int
    name: str
    keys: int
    enrolled: bool
    disabled: bool


async def create_staff(session: AsyncSession, *, name: str) -> Staff:
    name = name.strip()
    if not name:
        raise ValidationFailed("a staff member needs a name", field="name")
    staff = Staff(name=name)
    try:
        async with session.begin_nested():
            session.add(staff)
            await session.flush()
    except IntegrityError as exc:
        raise StaffNameTaken(f"a staff member is already called {name!r}") from exc
    return staff


async def find_staff(session: AsyncSession, *, who: str) -> Staff:
    """By id or by exact name."""
    stmt = (
        select(Staff).where(Staff.id == int(who)) if who.isdigit() else select(Staff).where(Staff.name == who)
    )
    staff = await session.scalar(stmt)
    if staff is None:
        raise StaffNotFound(f"no staff member {who!r}")
    return staff


async def add_key(
    session: AsyncSession, *, staff: Staff, roles: list[str], label: str | None = None
) -> tuple[ApiKey, str]:
    """A key under a person; only staff roles (a distributor key belongs to a distributor)."""
    bad = [r for r in roles if r not in STAFF]
    if bad:
        raise ValidationFailed(f"not a staff role: {', '.join(bad)}", field="roles")
    return await create_key(session, name=label or staff.name, roles=roles, staff_id=staff.id)


async def disable_staff(session: AsyncSession, *, staff: Staff) -> None:
    """Every key of the person stops at once (principal lookup refuses disabled people)."""
    staff.disabled_at = datetime.now(UTC)
    await session.flush()


async def list_staff(session: AsyncSession) -> list[StaffMember]:
    keys = (
        select(func.count())
        .where(ApiKey.staff_id == Staff.id, ApiKey.revoked_at.is_(None))
        .correlate(Staff)
        .scalar_subquery()
    )
    rows = await session.execute(select(Staff, keys).order_by(Staff.id))
    return [
        StaffMember(s.id, s.name, int(n), s.totp_secret is not None, s.disabled_at is not None)
        for s, n in rows.tuples()
    ]
