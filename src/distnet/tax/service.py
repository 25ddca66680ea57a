"""Tax withholding: which table is in force, the payment month, the monthly report for filing and
the year-end statement. The tax itself is computed in the payout run's statement
(``distnet_withholding_tax``; ``tax.rules`` is its pure twin)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from distnet.kit import audit
from distnet.kit.auth import Principal, Role, ensure_self_or_staff
from distnet.kit.crypto import decrypt, decrypt_many
from distnet.kit.money import format_amount
from distnet.models import Distributor, TaxIdentity
from distnet.models import TaxTable as TaxTableModel
from distnet.network.errors import DistributorNotFound
from distnet.settings import Settings
from distnet.tax import repository as repo
from distnet.tax import schemas
from distnet.tax.errors import InvalidTaxTable
from distnet.tax.rules import CHINA_LABOUR_REMUNERATION, InvalidTaxRules, validate

DEFAULT_NAME = "劳务报酬所得 预扣预缴 (China, labour remuneration)"


@dataclass(frozen=True, slots=True)
class TaxTableVersion:
    id: int
    version: int
    name: str
    effective_from: date
    rules: dict[str, Any]


def tax_month(at: datetime, time_zone: str) -> date:
    """The payment month: the first day of ``at``'s month on the business calendar."""
    local = at.astimezone(ZoneInfo(time_zone))
    return date(local.year, local.month, 1)


async def effective_table(session: AsyncSession, *, month: date) -> TaxTableVersion | None:
    await session.execute(
        repo.ENSURE_DEFAULT, {"name": DEFAULT_NAME, "rules": json.dumps(CHINA_LABOUR_REMUNERATION)}
    )
    row = (await session.execute(repo.EFFECTIVE_TABLE, {"month": month})).first()
    return (
        None if row is None else TaxTableVersion(row.id, row.version, row.name, row.effective_from, row.rules)
    )


# --------------------------------------------------------------------------- tax tables


def table_view(t: TaxTableModel, in_force_id: int | None) -> schemas.TaxTable:
    return schemas.TaxTable(
        id=t.id,
        version=t.version,
        name=t.name,
        effective_from=t.effective_from,
        rules=t.rules,
        created_at=t.created_at,
        created_by=t.created_by,
        in_force=t.id == in_force_id,
    )


async def list_tables(session: AsyncSession, *, settings: Settings) -> schemas.TaxTableList:
    month = tax_month(await session.scalar(repo.NOW), settings.business.time_zone)
    current = await effective_table(session, month=month)
    tables = await session.scalars(select(TaxTableModel).order_by(TaxTableModel.version))
    return schemas.TaxTableList(items=[table_view(t, current.id if current else None) for t in tables])


async def create_table(
    session: AsyncSession, *, settings: Settings, principal: Principal, data: schemas.TaxTableCreate
) -> schemas.TaxTable:
    """A new version; it applies to payments from ``effective_from`` (a month's first day) on."""
    if data.effective_from.day != 1:
        raise InvalidTaxTable(
            "effective_from must be the first day of a month",
            extra={"errors": [{"field": "effective_from", "message": "not the first of a month"}]},
        )
    try:
        rules = validate(data.rules)
    except InvalidTaxRules as exc:
        raise InvalidTaxTable(str(exc), extra={"errors": [{"field": "rules", "message": str(exc)}]}) from None
    await effective_table(session, month=data.effective_from)  # the default exists first: it is version 1
    await session.execute(repo.LOCK_TAX_TABLES)  # versions in order
    version = (await session.scalar(repo.LAST_TAX_TABLE_VERSION)) + 1
    table = TaxTableModel(
        version=version,
        name=data.name.strip(),
        effective_from=data.effective_from,
        rules=rules,
        created_by=principal.actor,
    )
    session.add(table)
    await session.flush()
    await session.refresh(table)
    await audit.record(
        session,
        principal,
        "tax_table.created",
        "tax_table",
        table.id,
        after={"version": version, "effective_from": data.effective_from.isoformat(), "rules": rules},
    )
    return table_view(table, None)


# --------------------------------------------------------------------------- reports


async def monthly_report(session: AsyncSession, *, settings: Settings, month: date) -> tuple[list, list]:
    """Per person for filing: name, resident ID number (decrypted: finance only), gross, tax, net."""
    rows = (await session.execute(repo.MONTHLY, {"month": month})).all()
    secret = settings.secret_key
    names = decrypt_many(secret, [r.name_enc for r in rows])
    ids = decrypt_many(secret, [r.resident_id_enc for r in rows])
    items = [
        [
            r.distributor_id,
            r.code,
            name or "",
            rid or "",
            r.currency,
            int(r.payments),
            format_amount(int(r.gross)),
            format_amount(int(r.tax)),
            format_amount(int(r.net)),
        ]
        for r, name, rid in zip(rows, names, ids, strict=True)
    ]
    summary = [
        ("month", month.strftime("%Y-%m")),
        ("payer", PAYER),
        ("people", len(items)),
        ("gross", format_amount(sum(int(r.gross) for r in rows))),
        ("tax withheld", format_amount(sum(int(r.tax) for r in rows))),
        ("net", format_amount(sum(int(r.net) for r in rows))),
    ]
    return summary, items


MONTHLY_COLUMNS = [
    "distributor_id",
    "distributor_code",
    "name",
    "resident_id",
    "currency",
    "payments",
    "gross",
    "tax",
    "net",
]
PAYER = "distnet 平台 (the platform)"


async def statement(
    session: AsyncSession, *, settings: Settings, principal: Principal, distributor_id: int, year: int
) -> schemas.TaxStatement:
    ensure_self_or_staff(principal, distributor_id, Role.finance)
    d = await session.get(Distributor, distributor_id)
    if d is None:
        raise DistributorNotFound(f"no distributor {distributor_id}")
    ident = await session.get(TaxIdentity, distributor_id)
    name = decrypt(settings.secret_key, ident.name_enc) if ident and ident.name_enc else None
    resident = (
        decrypt(settings.secret_key, ident.resident_id_enc) if ident and ident.resident_id_enc else None
    )
    found = {
        (r.month, r.currency): r
        for r in await session.execute(repo.STATEMENT, {"d": distributor_id, "year": year})
    }
    currency = settings.business.default_currency
    months = []
    for m in range(1, 13):
        r = found.get((date(year, m, 1), currency))
        gross, tax = (int(r.gross), int(r.tax)) if r else (0, 0)
        months.append(
            schemas.StatementMonth(
                month=f"{year}-{m:02d}",
                payments=int(r.payments) if r else 0,
                gross=format_amount(gross),
                tax=format_amount(tax),
                net=format_amount(gross - tax),
            )
        )
    gross = sum(int(r.gross) for (_, c), r in found.items() if c == currency)
    tax = sum(int(r.tax) for (_, c), r in found.items() if c == currency)
    return schemas.TaxStatement(
        distributor_id=d.id,
        distributor_code=d.code,
        year=year,
        currency=currency,
        payee_name=name,
        resident_id=("****" + resident[-4:]) if resident else None,
        payer=PAYER,
        months=months,
        gross=format_amount(gross),
        tax=format_amount(tax),
        net=format_amount(gross - tax),
    )
