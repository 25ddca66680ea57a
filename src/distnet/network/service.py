"""The distributor network: registration, upline/downline, team stats, moves, closure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.cards import service as cards
from distnet.cards.schemas import CardBrief
from distnet.db import rowcount
from distnet.kit import audit, outbox
from distnet.kit.auth import Principal, Role, create_key, ensure_self_or_staff
from distnet.kit.contract import Page
from distnet.kit.crypto import encrypt, keyed_hash
from distnet.kit.errors import NotFound, ValidationFailed
from distnet.kit.graph_svg import GraphEdge, GraphNode, render_svg
from distnet.kit.masking import mask_name
from distnet.kit.money import format_amount
from distnet.kit.pagination import check_limit, decode_cursor, encode_cursor
from distnet.kit.ratelimit import RateLimiter
from distnet.ledger.service import DISTRIBUTOR_ACCOUNTS, ensure_accounts
from distnet.ledger.statement import balances_view
from distnet.models import Card, Distributor
from distnet.network import repository as repo
from distnet.network.codes import new_referral_code
from distnet.network.errors import (
    CycleRefused,
    DistributorClosed,
    DistributorNotFound,
    UnknownSponsor,
)
from distnet.network.schemas import (
    ContactVerification,
    DistributorCreate,
    DistributorView,
    DownlineMember,
    DownlinePage,
    Me,
    Registration,
    SalesPeriod,
    TeamLevel,
    TeamStats,
    UplineMember,
)
from distnet.payout_accounts import service as payout_accounts
from distnet.profile.service import record_registration
from distnet.ranks.ladder import current_ladder
from distnet.ranks.service import ladder_of, progress_view
from distnet.settings import BusinessSettings, Settings

PII_FIELDS = ("phone", "device", "ip", "payment")


async def get_distributor(session: AsyncSession, *, distributor_id: int, lock: bool = False) -> Distributor:
    stmt = select(Distributor).where(Distributor.id == distributor_id)
    if lock:
        stmt = stmt.with_for_update()
    found = await session.scalar(stmt)
    if found is None:
        raise DistributorNotFound(f"no distributor {distributor_id}")
    return found


async def visible_distributor(
    session: AsyncSession, principal: Principal, distributor_id: int, *staff: str
) -> Distributor:
    ensure_self_or_staff(principal, distributor_id, *staff)
    return await get_distributor(session, distributor_id=distributor_id)


async def register(
    session: AsyncSession,
    *,
    settings: Settings,
    principal: Principal,
    data: DistributorCreate,
    limiter: RateLimiter | None = None,
) -> Registration:
    sponsor: Distributor | None = None
    if data.sponsor_code is None:
        if not principal.has(Role.admin):
            raise ValidationFailed(
                "sponsor_code is required (only an admin registers a root)", field="sponsor_code"
            )
    else:
        # FOR SHARE: a concurrent move of the sponsor's subtree must not leave us with a stale path
        sponsor = await session.scalar(
            select(Distributor)
            .where(Distributor.code == data.sponsor_code.strip().upper())
            .with_for_update(read=True)
        )
        if sponsor is None or sponsor.status != "active":
            raise UnknownSponsor(
                f"no active distributor has the code {data.sponsor_code!r}",
                extra={"errors": [{"field": "sponsor_code", "message": "unknown sponsor code"}]},
            )
    new_id = await repo.next_distributor_id(session)
    path = f"{sponsor.path}.{new_id}" if sponsor else str(new_id)
    secret = settings.secret_key
    pii = {"phone": data.phone, "device": data.device_id, "ip": data.ip, "payment": data.payment_fingerprint}
    for attempt in range(5):
        code = new_referral_code()
        try:
            async with session.begin_nested():
                session.add(
                    Distributor(
                        id=new_id,
                        code=code,
                        name=data.name.strip(),
                        sponsor_id=sponsor.id if sponsor else None,
                        depth=path.count("."),
                        path=path,
                        region=data.region,
                        locale=data.locale,
                        **{f"{k}_enc": encrypt(secret, v) for k, v in pii.items()},
                        **{f"{k}_hash": keyed_hash(secret, k, v) for k, v in pii.items()},
                    )
                )
                await session.flush()
            break
        except IntegrityError:  # referral code collision: 30^8 codes, so retrying is enough
            if attempt == 4:
                raise
    if sponsor is not None:
        await repo.insert_links(session, new_id, sponsor.id)
    card = await cards.issue_card(session, distributor_id=new_id)
    await payout_accounts.record_unconfirmed(
        session, settings=settings, distributor_id=new_id, account_number=data.bank_account
    )
    await ensure_accounts(session, distributor_ids=[new_id], currency=settings.business.default_currency)
    _, raw_key = await create_key(
        session, name=f"distributor {code}", roles=[Role.distributor], distributor_id=new_id
    )
    await audit.record(
        session,
        principal,
        "distributor.registered",
        "distributor",
        new_id,
        after={"code": code, "sponsor_id": sponsor.id if sponsor else None},
    )
    await outbox.emit(
        session,
        "distributor.registered",
        {"id": new_id, "code": code, "sponsor_id": sponsor.id if sponsor else None},
        distributor_id=new_id,
    )
    codes = await record_registration(
        session,
        settings=settings,
        principal=principal,
        distributor_id=new_id,
        consent=data.consent,
        phone=data.phone,
        email=data.email,
        limiter=limiter,
    )
    view = msgspec.structs.asdict(
        await profile(session, d=await get_distributor(session, distributor_id=new_id))
    )
    view["card"] = CardBrief(number=card.number, status="active")
    verification = [
        ContactVerification(
            channel=c.channel,
            sent_to=c.sent_to,
            expires_at=c.expires_at,
            confirm_with="POST /api/v1/me/contact/verify",
        )
        for c in codes
    ]
    return Registration(**view, api_key=raw_key, contact_verification=verification)


async def profile(session: AsyncSession, *, d: Distributor) -> DistributorView:
    card = await cards.current_card(session, distributor_id=d.id)
    return DistributorView(
        id=d.id,
        code=d.code,
        name=d.name,
        sponsor_id=d.sponsor_id,
        rank=d.rank,
        region=d.region,
        status=d.status,
        depth=d.depth,
        joined_at=d.joined_at,
        closed_at=d.closed_at,
        card=await cards.card_view(session, card=card) if card else None,
    )


def _view_of_row(row: Any) -> DistributorView:
    """The view of a ``repository.profile_row`` (the same as ``profile`` of the ORM distributor)."""
    return DistributorView(
        id=row.id,
        code=row.code,
        name=row.name,
        sponsor_id=row.sponsor_id,
        rank=row.rank,
        region=row.region,
        status=row.status,
        depth=row.depth,
        joined_at=row.joined_at,
        closed_at=row.closed_at,
        card=cards.card_view_of_row(row) if row.number else None,
    )


async def distributor_view(
    session: AsyncSession, *, principal: Principal, distributor_id: int
) -> DistributorView:
    """GET /distributors/{id}: owner or staff; one statement (distributor, card, holds)."""
    ensure_self_or_staff(principal, distributor_id)
    row = await repo.profile_row(session, distributor_id)
    if row is None:
        raise DistributorNotFound(f"no distributor {distributor_id}")
    return _view_of_row(row)


async def me(session: AsyncSession, *, principal: Principal) -> Me:
    """The key's distributor with card, holds, balances and rank progress: one statement."""
    if principal.distributor_id is None:
        raise NotFound("this key belongs to no distributor")
    default = current_ladder()
    row = await repo.me_row(
        session, principal.distributor_id, currency="CNY", default_days=default.period_days
    )
    if row is None:
        raise DistributorNotFound(f"no distributor {principal.distributor_id}")
    found = dict(zip(row.balance_kinds or (), row.balance_amounts or (), strict=True))
    ladder = (
        default
        if row.ladder_version is None
        else ladder_of(
            row.ladder_version,
            row.ladder_days,
            row.ladder_ranks,
            row.ladder_min_personal,
            row.ladder_min_team,
            row.ladder_from,
        )
    )
    return Me(
        **msgspec.structs.asdict(_view_of_row(row)),
        balances=balances_view({kind: found.get(kind, 0) for kind in DISTRIBUTOR_ACCOUNTS}),
        rank_progress=progress_view(ladder, row.rank, int(row.personal), int(row.team)),
    )


async def upline(
    session: AsyncSession,
    *,
    principal: Principal,
    distributor_id: int,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[UplineMember]:
    """Ancestors nearest first, paginated: a 1,000-deep chain has 1,000 of them."""
    d = await visible_distributor(session, principal, distributor_id)
    limit = check_limit(limit)
    after = decode_cursor(cursor, 1)
    if after is not None and not isinstance(after[0], int):
        raise ValidationFailed("cursor is not valid", field="cursor")
    rows = await repo.upline(session, d.id, after[0] if after else 0, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([UplineMember(**row) for row in rows], encode_cursor(rows[-1]["level"]) if more else None)


async def downline(
    session: AsyncSession,
    *,
    principal: Principal,
    distributor_id: int,
    max_depth: int | None,
    limit: int | None,
    cursor: str | None,
    placed_from: datetime | None = None,
    placed_to: datetime | None = None,
) -> DownlinePage:
    ensure_self_or_staff(principal, distributor_id)
    try:
        limit = check_limit(limit)
        if max_depth is not None and not (1 <= max_depth <= 10_000):
            raise ValidationFailed("max_depth must be between 1 and 10000", field="max_depth")
        after = decode_cursor(cursor, 2)
        if after is not None and not all(isinstance(x, int) for x in after):
            raise ValidationFailed("cursor is not valid", field="cursor")
        lo, hi = sales_period(placed_from, placed_to)
    except ValidationFailed:
        await get_distributor(
            session, distributor_id=distributor_id
        )  # a distributor that does not exist is a 404 first
        raise
    # one statement: the distributor's existence, the page and its members' sales
    found, rows = await repo.downline_with_sales(
        session,
        distributor_id,
        max_depth or 10_000,
        (after[0], after[1]) if after else None,
        limit + 1,
        lo,
        hi,
    )
    if not found:
        raise DistributorNotFound(f"no distributor {distributor_id}")
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].level, rows[-1].id) if more else None
    items = [
        DownlineMember(
            id=r.id,
            code=r.code,
            name=mask_name(r.name, erased=r.erased_at is not None),
            level=r.level,
            rank=r.rank,
            joined_at=r.joined_at,
            sales=format_amount(r.sales or 0),
        )
        for r in rows
    ]
    return DownlinePage(items=items, next_cursor=next_cursor, period=SalesPeriod(from_=lo, to=hi))


def sales_period(placed_from: datetime | None, placed_to: datetime | None) -> tuple[datetime, datetime]:
    """The period of a team's sales: [from, to), by default this calendar month (UTC) to now."""
    now = datetime.now(UTC)
    hi = placed_to or now
    lo = placed_from or now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if hi <= lo:
        raise ValidationFailed("to must be after from", field="to")
    return lo, hi


async def team_entries(
    session: AsyncSession, *, rows: list[dict[str, Any]], lo: datetime, hi: datetime
) -> list[DownlineMember]:
    """Downline members as their upline may see them (DESIGN invariant 10): code, masked name, rank
    and the member's net sales for the period. Never contact or payout data."""
    sales = await repo.net_sales_of(session, [r["id"] for r in rows], lo, hi)
    return [
        DownlineMember(
            id=r["id"],
            code=r["code"],
            name=mask_name(r["name"], erased=r["erased_at"] is not None),
            level=r["level"],
            rank=r["rank"],
            joined_at=r["joined_at"],
            sales=format_amount(sales.get(r["id"], 0)),
        )
        for r in rows
    ]


TEAM_PICTURE_CAP = 150
"""Members drawn in a team picture; the rest are one "+K more" node."""


async def team_svg(
    session: AsyncSession,
    *,
    principal: Principal,
    distributor_id: int,
    depth: int,
    max_nodes: int = TEAM_PICTURE_CAP,
) -> str:
    """The team down to ``depth`` levels as an SVG tree (kit.graph_svg): the first ``max_nodes``
    members in (level, id) order and a count of the rest, so a hub with 100k recruits costs one
    page read and one index-only count."""
    if not 1 <= depth <= 3:
        raise ValidationFailed("depth must be between 1 and 3", field="depth")
    d = await visible_distributor(session, principal, distributor_id)
    rows = await repo.downline_page(session, d.id, depth, None, max_nodes)
    total = len(rows) if len(rows) < max_nodes else await repo.team_size(session, d.id, depth)
    lo, hi = sales_period(None, None)
    members = await team_entries(session, rows=rows, lo=lo, hi=hi)
    nodes = [GraphNode(id=str(d.id), label=d.code, sublabel=d.rank, level=0, group="self")]
    nodes += [
        GraphNode(
            id=str(m.id),
            label=f"{m.name} {m.code}",
            sublabel=f"{m.rank} · {m.sales}",
            level=m.level,
            group=m.rank,
        )
        for m in members
    ]
    edges = [GraphEdge(source=str(r["sponsor_id"]), target=str(r["id"])) for r in rows if r["sponsor_id"]]
    return render_svg(
        nodes,
        edges,
        max_nodes=max_nodes + 1,
        layout="tree",
        more_total=total - len(rows),
        more_level=1,
        more_anchor=str(d.id),
        title=f"{d.code}: {total:,} members in {depth} level(s)",
    )


async def team_stats(session: AsyncSession, *, principal: Principal, distributor_id: int) -> TeamStats:
    d = await visible_distributor(session, principal, distributor_id)
    levels = await repo.team_stats(session, d.id)
    return TeamStats(
        total=sum(row["count"] for row in levels),
        by_level=[
            TeamLevel(level=r["level"], count=r["count"], sales=format_amount(int(r["sales"])))
            for r in levels
        ],
    )


async def move_sponsor(
    session: AsyncSession,
    *,
    principal: Principal,
    distributor_id: int,
    sponsor_id: int,
    note: str | None = None,
) -> DistributorView:
    await repo.lock_network_moves(session)
    d = await get_distributor(session, distributor_id=distributor_id)
    new_sponsor = await get_distributor(session, distributor_id=sponsor_id)
    if d.status == "closed" or new_sponsor.status == "closed":
        raise DistributorClosed("closed distributors cannot be moved or receive a downline")
    if new_sponsor.id == d.id or await repo.is_in_downline(session, d.id, new_sponsor.id):
        raise CycleRefused(f"distributor {sponsor_id} is in the downline of {distributor_id}")
    before = {"sponsor_id": d.sponsor_id, "path": d.path}
    if d.sponsor_id == new_sponsor.id:
        return await profile(session, d=d)
    await repo.lock_subtree(session, d.id)
    await repo.move_subtree(session, d.id, new_sponsor.id)
    new_path = f"{new_sponsor.path}.{d.id}"
    await audit.record(
        session,
        principal,
        "distributor.sponsor_moved",
        "distributor",
        d.id,
        before=before,
        after={"sponsor_id": new_sponsor.id, "path": new_path, "note": note},
    )
    await outbox.emit(
        session,
        "distributor.sponsor_moved",
        {"id": d.id, "from": before["sponsor_id"], "to": new_sponsor.id},
        distributor_id=d.id,
    )
    moved_id = d.id
    session.expire_all()
    return await profile(session, d=await get_distributor(session, distributor_id=moved_id))


async def erase_due_personal_data(
    session: AsyncSession, *, now: datetime | None = None, settings: Settings | None = None
) -> int:
    """The daily erasure job: payout accounts and tax retention here, then every other copy of the
    person's data (``closure.service.erase_due``)."""
    from distnet.closure.service import erase_due  # closure builds on the network; not the other way

    await _erase_payout_data(session, now=now, settings=settings)
    return await erase_due(session, now=now)


async def _erase_payout_data(
    session: AsyncSession, *, now: datetime | None = None, settings: Settings | None = None
) -> int:
    """Erase contact and payout account data of accounts closed longer than the retention period;
    ids, codes and financial records stay, and so does what tax law requires (``tax_identity``:
    name, resident ID) for ``DISTNET_TAX_RETENTION_YEARS``. Set-based and idempotent."""
    tax_retention_years = (settings.business if settings else BusinessSettings()).tax_retention_years
    result = await session.execute(
        text(
            """
            WITH erased AS (
                UPDATE distributor SET name = 'erased', erased_at = now(),
                       phone_enc = NULL, phone_hash = NULL, device_enc = NULL, device_hash = NULL,
                       ip_enc = NULL, ip_hash = NULL, payment_enc = NULL, payment_hash = NULL
                 WHERE status = 'closed' AND erased_at IS NULL AND erase_after <= coalesce(:now, now())
                RETURNING id
            ), accounts AS (
                UPDATE payout_account a SET holder_name_enc = NULL, account_number_enc = NULL, account_hash = NULL,
                       resident_id_enc = NULL, bank_branch = NULL, status = 'erased'
                  FROM erased WHERE a.distributor_id = erased.id
                RETURNING 1
            ), kept AS (
                UPDATE tax_identity t SET retain_until = coalesce(:now, now()) + make_interval(years => :years)
                  FROM erased WHERE t.distributor_id = erased.id
                RETURNING 1
            )
            SELECT count(*) FROM erased
            """
        ),
        {"now": now, "years": tax_retention_years},
    )
    return int(result.scalar_one())


async def purge_expired_tax_identities(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Tax records of erased accounts past their legal retention go too."""
    result = await session.execute(
        text(
            "UPDATE tax_identity SET name_enc = NULL, resident_id_enc = NULL "
            "WHERE retain_until <= coalesce(:now, now()) AND (name_enc IS NOT NULL OR resident_id_enc IS NOT NULL)"
        ),
        {"now": now},
    )
    return rowcount(result)


__all__ = ["Card", "PII_FIELDS"]
