"""Bulk import of orders from CSV (offline stores, history): the file goes into a temporary table
with COPY, is validated and inserted with set-based SQL, and the new orders are attributed by the
same statement as every other order, a million at a time (aggregated postings: one ledger
transaction per import, or per part when it runs on several connections).

Columns (header row required, any order, unknown columns refused): external_id, card_number,
amount, and optionally source, currency, category, channel, placed_at, buyer_ref, buyer_device_id,
buyer_ip, buyer_payment_fingerprint. Rows whose (source, external_id) exists with the same content
are skipped as replays; with different content they are reported as conflicts. Invalid rows are
reported by line and left out; the valid ones go in.

``import_csv`` runs in the caller's transaction. ``import_csv_parts`` (the CLI) splits the file by
key over several connections, so that PostgreSQL checks and inserts on several cores at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from distnet.kit import pg
from distnet.kit.crypto import encrypt_many
from distnet.kit.errors import ValidationFailed
from distnet.kit.money import CURRENCIES, MAX_AMOUNT_MINOR
from distnet.orders.ingest import CLOCK_SKEW, accept
from distnet.settings import Settings

REQUIRED = ("external_id", "card_number", "amount")
OPTIONAL = (
    "source",
    "currency",
    "category",
    "channel",
    "placed_at",
    "buyer_ref",
    "buyer_device_id",
    "buyer_ip",
    "buyer_payment_fingerprint",
)
NEW_IDS = "SELECT id FROM import_new"
UNIQUE_VIOLATION, DEADLOCK_DETECTED = "23505", "40P01"


def hmac_pads(secret: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256 inner/outer pads of the personal-data hash key (kit.crypto), so that SQL computes
    sha256(opad || sha256(ipad || message)) = the same keyed hash as Python, without pgcrypto."""
    key = hashlib.sha256(b"distnet-pii-hash:" + secret).digest().ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def _keyed(kind: str, column: str) -> str:
    value = f"lower(btrim(r.{column}, E' \\t\\n\\r\\f\\v'))"
    return (
        f"CASE WHEN nullif({value}, '') IS NULL THEN NULL ELSE substring(sha256(:opad || sha256(:ipad || "
        f"convert_to('{kind}:' || {value}, 'UTF8'))) FROM 1 FOR 16) END"
    )


# An RFC 3339 time whose cast cannot fail (day at most 28, every field in range): cast directly. The
# other values (days 29-31, odd formats, garbage) go through distnet_try_timestamptz, whose
# exception block opens a subtransaction per call. Alone that is cheap (0.17 s per 100k rows), but
# past 64 subtransactions the transaction's snapshot overflows and every later visibility check
# in it slows down: the parse pass went from 1.7 to 2.9 s and the insert from 2.2 to 3.5 s.
_SURELY_A_TIME = (
    r"^[12]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])[T ]([01]\d|2[0-3]):[0-5]\d"
    r"(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3])(:?[0-5]\d)?)$"
)

# One pass over the raw rows: parse, look up the card, decide the row's error (the first rule that
# fails, by line) and hash the canonical body of the valid ones. (Three passes before, a CREATE and
# two full-table UPDATEs: 0.9 s of a 7.5 s import of 100k rows.) ``p`` is MATERIALIZED: inlined,
# its expressions (the timestamp parse, a subtransaction each; the keyed hashes) would run once per
# reference.
_CHECKED = f"""
WITH p AS MATERIALIZED (
    SELECT r.line, coalesce(nullif(r.source, ''), :source) AS source, r.external_id, r.card_number,
           CASE WHEN r.amount ~ '^\\d{{1,13}}(\\.\\d{{1,2}})?$' THEN round(r.amount::numeric * 100)::bigint END AS amount,
           upper(coalesce(nullif(r.currency, ''), :currency)) AS currency,
           nullif(r.category, '') AS category, nullif(r.channel, '') AS channel,
           CASE WHEN r.placed_at ~ '{_SURELY_A_TIME}' THEN r.placed_at::timestamptz
                WHEN nullif(r.placed_at, '') IS NOT NULL THEN distnet_try_timestamptz(r.placed_at) END AS placed_at,
           nullif(r.placed_at, '') IS NOT NULL AS has_placed_at,
           r.placed_at ~ '(Z|[+-]\\d{{2}}(:?\\d{{2}})?)$' AS placed_at_has_zone,
           {_keyed("buyer_ref", "buyer_ref")} AS buyer_ref_hash, br.enc AS buyer_ref_enc,
           {_keyed("device", "buyer_device_id")} AS buyer_device_hash,
           {_keyed("ip", "buyer_ip")} AS buyer_ip_hash,
           {_keyed("payment", "buyer_payment_fingerprint")} AS buyer_payment_hash,
           c.id AS card_id, c.distributor_id AS seller_id, c.frozen_at, c.cancelled_at, d.status AS seller_status,
           h.distributor_id IS NOT NULL AS held
      FROM import_raw r
      LEFT JOIN import_buyer_ref br ON br.line = r.line
      LEFT JOIN card c ON c.number = r.card_number
      LEFT JOIN distributor d ON d.id = c.distributor_id
      -- the few sellers under an active hold, hashed once (not a probe per row)
      LEFT JOIN (SELECT DISTINCT distributor_id FROM hold
                  WHERE lifted_at IS NULL AND started_at <= now() AND (ends_at IS NULL OR ends_at > now())) h
        ON h.distributor_id = c.distributor_id
), e AS (
    SELECT p.*, CASE
        WHEN external_id IS NULL OR length(external_id) > 128 THEN 'external_id: required, at most 128 characters'
        WHEN length(source) > 64 THEN 'source: at most 64 characters'
        WHEN amount IS NULL OR amount <= 0 OR amount > :max_amount
            THEN 'amount: a positive decimal with at most two places'
        WHEN NOT (currency = ANY(CAST(:currencies AS text[]))) THEN 'currency: unknown currency'
        WHEN length(category) > 64 OR length(channel) > 64 THEN 'category/channel: at most 64 characters'
        WHEN has_placed_at AND (placed_at IS NULL OR NOT placed_at_has_zone)
            THEN 'placed_at: an RFC 3339 time with zone'
        WHEN placed_at > now() + CAST(:skew AS interval) THEN 'placed_at: in the future'
        WHEN placed_at < '2000-01-01T00:00:00Z' THEN 'placed_at: before 2000-01-01'
        WHEN card_id IS NULL THEN 'card_number: no such card'
        WHEN cancelled_at IS NOT NULL THEN 'card_number: the card is cancelled'
        WHEN frozen_at IS NOT NULL THEN 'card_number: the card is frozen'
        WHEN seller_status = 'closed' THEN 'card_number: the seller is closed'
        WHEN held THEN 'card_number: the card is suspended (active hold)'
    END AS error
      FROM p
)
SELECT line, source, external_id, card_number, amount, currency, category, channel,
       coalesce(placed_at, now()) AS placed_at, buyer_ref_hash, buyer_device_hash, buyer_ip_hash, buyer_payment_hash,
       buyer_ref_enc, card_id, seller_id, error,
       CASE WHEN error IS NULL THEN sha256(convert_to(concat_ws(E'\\x1f', source, external_id, card_number,
           amount::text, currency, coalesce(category, ''), coalesce(channel, ''),
           CASE WHEN has_placed_at THEN ((extract(epoch FROM placed_at) * 1000000)::bigint)::text ELSE '' END,
           coalesce(encode(buyer_ref_hash, 'hex'), ''), coalesce(encode(buyer_device_hash, 'hex'), ''),
           coalesce(encode(buyer_ip_hash, 'hex'), ''), coalesce(encode(buyer_payment_hash, 'hex'), '')), 'UTF8'))
       END AS body_hash
  FROM e
"""
_CHECK = f"CREATE TEMP TABLE import_checked ON COMMIT DROP AS {_CHECKED}"

# The common case in one statement, with no staging table: the checked rows stay in the
# statement's memory (``k``), each valid row learns the order already stored under its key and the
# first row of its key in the file (``v``), and the new keys go in with a plain INSERT, in key
# order. No ON CONFLICT: speculative insertion cost 0.26 s per 100k rows, and the staging table
# 0.1 s more to write and read. If another transaction inserts one of the keys meanwhile, the
# INSERT fails on the unique index and the caller takes the staged path below instead.
_FAST = f"""
WITH k AS MATERIALIZED ({_CHECKED}),
v AS MATERIALIZED (
    SELECT k.*, (SELECT o.body_hash FROM orders o WHERE o.source = k.source AND o.external_id = k.external_id)
                AS existing_hash,
           first_value(k.body_hash) OVER w AS first_hash, row_number() OVER w AS nth
      FROM k WHERE k.error IS NULL
    WINDOW w AS (PARTITION BY k.source, k.external_id ORDER BY k.line)
),
ins AS (
    INSERT INTO orders (source, external_id, body_hash, card_id, seller_id, amount, currency, category, channel,
                        placed_at, buyer_ref_hash, buyer_device_hash, buyer_ip_hash, buyer_payment_hash,
                        buyer_ref_enc)
    SELECT source, external_id, body_hash, card_id, seller_id, amount, currency, category, channel,
           placed_at, buyer_ref_hash, buyer_device_hash, buyer_ip_hash, buyer_payment_hash, buyer_ref_enc
      FROM v WHERE nth = 1 AND existing_hash IS NULL
     ORDER BY source, external_id
    RETURNING id
),
new AS ({{keep_new}})
SELECT (SELECT count(*) FROM new) AS created,
       (SELECT count(*) FROM v WHERE coalesce(existing_hash, first_hash) = body_hash
                                 AND NOT (nth = 1 AND existing_hash IS NULL)) AS replayed,
       (SELECT count(*) FROM v WHERE coalesce(existing_hash, first_hash) <> body_hash) AS conflicts,
       (SELECT count(*) FROM k WHERE error IS NOT NULL) AS errors,
       (SELECT coalesce(json_agg(x ORDER BY x.line), '[]') FROM (
            SELECT line + 1 AS line, external_id, error FROM k WHERE error IS NOT NULL ORDER BY line LIMIT :n) x
       ) AS error_lines
"""
_FAST_COUNT = _FAST.replace("{keep_new}", "SELECT id FROM ins")
_FAST_KEEP = _FAST.replace("{keep_new}", "INSERT INTO import_new SELECT id FROM ins RETURNING id")

_INSERT = """
WITH ins AS (
    INSERT INTO orders (source, external_id, body_hash, card_id, seller_id, amount, currency, category, channel,
                        placed_at, buyer_ref_hash, buyer_device_hash, buyer_ip_hash, buyer_payment_hash,
                        buyer_ref_enc)
    SELECT DISTINCT ON (source, external_id) source, external_id, body_hash, card_id, seller_id, amount, currency,
           category, channel, placed_at, buyer_ref_hash, buyer_device_hash, buyer_ip_hash, buyer_payment_hash,
           buyer_ref_enc
      FROM import_checked WHERE error IS NULL
     ORDER BY source, external_id, line
    ON CONFLICT (source, external_id) DO NOTHING
    RETURNING id
)
INSERT INTO import_new SELECT id FROM ins
"""

_OUTCOME = """
WITH k AS (
    SELECT k.error, k.body_hash, o.id AS order_id, o.body_hash AS existing_hash,
           row_number() OVER (PARTITION BY k.source, k.external_id, k.error IS NULL ORDER BY k.line) AS nth
      FROM import_checked k LEFT JOIN orders o ON o.source = k.source AND o.external_id = k.external_id
)
SELECT count(*) FILTER (WHERE k.error IS NULL AND k.nth = 1 AND n.id IS NOT NULL) AS created,
       count(*) FILTER (WHERE k.error IS NULL AND k.existing_hash = k.body_hash
                          AND NOT (k.nth = 1 AND n.id IS NOT NULL)) AS replayed,
       count(*) FILTER (WHERE k.error IS NULL AND k.existing_hash <> k.body_hash) AS conflicts,
       count(*) FILTER (WHERE k.error IS NOT NULL) AS errors
  FROM k LEFT JOIN import_new n ON n.id = k.order_id
"""


async def _staged(
    session: AsyncSession, params: dict[str, Any], max_errors_listed: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The path for files whose keys another transaction inserted while the one-statement path
    ran: the checked rows are staged, the insert skips keys that exist (ON CONFLICT, waiting for a
    concurrent inserter to finish), and the outcome is read back from the table."""
    await session.execute(text(_CHECK), params)
    await session.execute(text(_INSERT))
    await session.execute(text("ANALYZE import_new"))
    valid, errors_n, created = (
        await session.execute(
            text(
                "SELECT count(*) FILTER (WHERE error IS NULL), count(*) FILTER (WHERE error IS NOT NULL), "
                "(SELECT count(*) FROM import_new) FROM import_checked"
            )
        )
    ).one()
    if valid == created:  # every valid row is a new order: nothing was a replay or a conflict
        outcome = {"created": created, "replayed": 0, "conflicts": 0, "errors": errors_n}
    else:
        await session.execute(text("ANALYZE import_checked"))
        outcome = dict((await session.execute(text(_OUTCOME))).one()._mapping)
    errors = [
        dict(r._mapping)
        for r in await session.execute(
            text(
                "SELECT line + 1 AS line, external_id, error FROM import_checked WHERE error IS NOT NULL "
                "ORDER BY line LIMIT :n"
            ),
            {"n": max_errors_listed},
        )
    ]
    return outcome, errors


def _check_header(header: list[str]) -> None:
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    missing = [c for c in REQUIRED if c not in header]
    if unknown or missing:
        raise ValidationFailed(
            f"CSV header: unknown columns {unknown}, missing columns {missing}", field="header"
        )


def _copy_sql(header: list[str], source: str, part: tuple[int, int] | None) -> str:
    """COPY of the file into ``import_raw``; with ``part`` = (k, n), only the rows whose key hashes
    to k of n (every row of a key lands in the same part; ``line`` still counts every row)."""
    sql = f"COPY import_raw ({', '.join(header)}) FROM STDIN WITH (FORMAT csv, HEADER true)"
    if part is None:
        return sql
    k, n = part
    default = "'" + source.replace("'", "''") + "'"  # COPY ... WHERE takes no parameters
    key = f"coalesce(nullif(source, ''), {default}) || E'\\x1f' || coalesce(external_id, '')"
    return f"{sql} WHERE (hashtext({key}) & 2147483647) % {n} = {k}"


async def _stage(session: AsyncSession) -> Any:
    """The transaction's staging tables; returns the raw psycopg connection for the COPY."""
    await session.execute(
        text(
            "CREATE TEMP TABLE import_raw (line bigserial, "
            + ", ".join(f"{c} text" for c in REQUIRED + OPTIONAL)
            + ") ON COMMIT DROP"
        )
    )
    await session.execute(text("CREATE TEMP TABLE import_new (id bigint PRIMARY KEY) ON COMMIT DROP"))
    await session.execute(
        text(
            "CREATE TEMP TABLE import_buyer_ref (line bigint PRIMARY KEY, enc bytea NOT NULL) ON COMMIT DROP"
        )
    )
    return (await (await session.connection()).get_raw_connection()).driver_connection


_BUYER_REFS_OUT = r"COPY (SELECT line, buyer_ref FROM import_raw WHERE buyer_ref ~ '\S') TO STDOUT"
_BUYER_REFS_IN = "COPY import_buyer_ref (line, enc) FROM STDIN"
_COPY_TEXT_ESCAPES = {b"\\\\": b"\\", b"\\t": b"\t", b"\\n": b"\n", b"\\r": b"\r"}


def _unescape_copy_text(field: bytes) -> str:
    """A field of COPY's text format (PostgreSQL escapes backslash, tab, newline, carriage return)."""
    if b"\\" in field:
        field = re.sub(rb"\\[\\tnr]", lambda m: _COPY_TEXT_ESCAPES[m.group()], field)
    return field.decode()


async def _encrypt_buyer_refs(session: AsyncSession, secret: bytes) -> int:
    """The staged buyer references, encrypted into ``import_buyer_ref`` (line, Fernet token), which
    the check joins: COPY out of the raw table, one AES pass (kit.crypto.encrypt_many), COPY back.
    Raw COPY text both ways, so no Python work per row beyond the split and the token."""
    raw = (await (await session.connection()).get_raw_connection()).driver_connection
    assert raw is not None
    out = bytearray()
    async with raw.cursor() as cur, cur.copy(_BUYER_REFS_OUT) as copy:
        async for block in copy:
            out += block
    if not out:
        return 0
    lines, refs = [], []
    for record in bytes(out).split(b"\n")[:-1]:
        line, _, ref = record.partition(b"\t")
        lines.append(line)
        refs.append(_unescape_copy_text(ref))
    tokens = encrypt_many(secret, refs)
    # Fernet tokens are base64url text: as bytea input (escape format) and in COPY text alike every
    # character stands for itself, so the token goes in as it is (no hex: half the bytes)
    payload = b"".join(
        line + b"\t" + t + b"\n" for line, t in zip(lines, tokens, strict=True) if t is not None
    )
    async with raw.cursor() as cur, cur.copy(_BUYER_REFS_IN) as copy:
        await copy.write(payload)
    await session.execute(text("ANALYZE import_buyer_ref"))
    return len(lines)


async def _insert(
    session: AsyncSession, settings: Settings, *, source: str, attribute: bool, max_errors_listed: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Check the staged rows and insert the new orders (the one-statement path, or the staged one
    when another writer inserted some of the keys meanwhile)."""
    await _encrypt_buyer_refs(session, settings.secret_key)
    ipad, opad = hmac_pads(settings.secret_key)
    # the parse pass, the key-ordered insert and the aggregated postings sort and hash whole files:
    # in memory rather than spilled to temporary files at the default 4 MB (this transaction only)
    await session.execute(pg.bulk_settings("256MB"))
    params = {
        "source": source,
        "currency": settings.business.default_currency,
        "ipad": ipad,
        "opad": opad,
        "max_amount": MAX_AMOUNT_MINOR,
        "currencies": sorted(CURRENCIES),
        "skew": f"{int(CLOCK_SKEW.total_seconds())} seconds",
        "n": max_errors_listed,
    }
    try:
        async with session.begin_nested():
            row = (await session.execute(text(_FAST_KEEP if attribute else _FAST_COUNT), params)).one()
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) not in (UNIQUE_VIOLATION, DEADLOCK_DETECTED):
            raise
        return await _staged(session, params, max_errors_listed)
    if attribute:  # the staged path analyzed it already
        await session.execute(text("ANALYZE import_new"))
    return {k: row._mapping[k] for k in ("created", "replayed", "conflicts", "errors")}, list(row.error_lines)


async def _attribute(
    session: AsyncSession,
    settings: Settings,
    outcome: dict[str, Any],
    errors: list[dict[str, Any]],
    attribute: bool,
) -> dict[str, Any]:
    """Commissions, sales and events of the new orders; the part's result."""
    summary: dict[str, Any] = {"commissions": 0, "amount": 0}
    if attribute and outcome["created"]:
        currencies = set(
            await session.scalars(
                text("SELECT DISTINCT currency FROM orders WHERE id IN (SELECT id FROM import_new)")
            )
        )
        first_id = await session.scalar(text("SELECT min(id) FROM import_new"))
        summary = await accept(
            session,
            settings,
            NEW_IDS,
            {},
            currencies=currencies,
            aggregate=True,
            ref_type="order_import",
            ref_id=first_id,
        )
    return {
        **{k: int(v) for k, v in outcome.items()},
        "commissions": int(summary["commissions"]),
        "commission_amount": int(summary["amount"]),
        "error_lines": errors,
    }


async def _chunks_of(chunks: Any) -> AsyncIterator[bytes]:
    if hasattr(chunks, "__aiter__"):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk


async def import_csv(
    session: AsyncSession,
    settings: Settings,
    chunks: AsyncIterator[bytes] | Any,
    *,
    header: list[str],
    source: str = "import",
    attribute: bool = True,
    max_errors_listed: int = 20,
) -> dict[str, Any]:
    """Import a CSV stream whose first line is ``header``. Runs in the caller's transaction."""
    _check_header(header)
    raw = await _stage(session)
    async with raw.cursor() as cur, cur.copy(_copy_sql(header, source, None)) as copy:
        async for chunk in _chunks_of(chunks):
            await copy.write(chunk)
    outcome, errors = await _insert(
        session, settings, source=source, attribute=attribute, max_errors_listed=max_errors_listed
    )
    return await _attribute(session, settings, outcome, errors, attribute)


class ImportPartlyCommitted(RuntimeError):
    """A later part of a parallel import failed after earlier parts had committed."""


async def import_csv_parts(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    chunks: AsyncIterator[bytes] | Any,
    *,
    header: list[str],
    source: str = "import",
    attribute: bool = True,
    commit: bool = True,
    parts: int = 2,
    max_errors_listed: int = 20,
) -> dict[str, Any]:
    """Import a CSV stream on ``parts`` connections at once, each in its own transaction: every
    connection receives the whole stream, keeps the rows whose key hashes to it (so every row of a
    key, duplicates included, is in one part and no two parts insert the same key), and checks and
    inserts them, all parts in parallel (PostgreSQL runs one statement on one core). Commissions
    follow part after part, each part committing (or, without ``commit``, rolling back) as soon as
    they are written: two parts attributing at once would wait on each other's rank upgrades.
    Nothing commits unless every part's orders went in. A failure while a later part attributes
    leaves the earlier parts committed (``ImportPartlyCommitted``); the import is idempotent, so
    running the same file again finishes it."""
    _check_header(header)
    if parts <= 1:
        async with sessionmaker() as session:
            result = await import_csv(
                session,
                settings,
                chunks,
                header=header,
                source=source,
                attribute=attribute,
                max_errors_listed=max_errors_listed,
            )
            await (session.commit() if commit else session.rollback())
            return result
    sessions = [sessionmaker() for _ in range(parts)]
    committed = 0
    try:
        raws = [await _stage(s) for s in sessions]
        async with contextlib.AsyncExitStack() as stack:
            copies = []
            for k, raw in enumerate(raws):
                cur = await stack.enter_async_context(raw.cursor())
                copies.append(
                    await stack.enter_async_context(cur.copy(_copy_sql(header, source, (k, parts))))
                )
            async for chunk in _chunks_of(chunks):
                await asyncio.gather(*(c.write(chunk) for c in copies))
        inserted = await asyncio.gather(
            *(
                _insert(s, settings, source=source, attribute=attribute, max_errors_listed=max_errors_listed)
                for s in sessions
            )
        )
        results = []
        for s, (outcome, errors) in zip(sessions, inserted, strict=True):
            results.append(await _attribute(s, settings, outcome, errors, attribute))
            await (s.commit() if commit else s.rollback())
            committed += commit
    except Exception as exc:
        for s in sessions:
            await s.rollback()
        if committed:
            raise ImportPartlyCommitted(
                f"{committed} of {parts} parts of the import committed before this error: {exc}; import the same "
                "file again to finish it (rows already imported are skipped as replays)"
            ) from exc
        raise
    finally:
        for s in sessions:
            await s.close()
    merged: dict[str, Any] = {
        k: sum(r[k] for r in results)
        for k in ("created", "replayed", "conflicts", "errors", "commissions", "commission_amount")
    }
    merged["error_lines"] = sorted((e for r in results for e in r["error_lines"]), key=lambda e: e["line"])[
        :max_errors_listed
    ]
    return merged
