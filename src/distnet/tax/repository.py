"""SQL of the tax domain: tax table versions, monthly withholding per person, year-end statements."""

from __future__ import annotations

from sqlalchemy import text

# the table in force for a month: the newest version effective on its first day
EFFECTIVE_TABLE = text(
    """
    SELECT id, version, name, effective_from, rules FROM tax_table
     WHERE effective_from <= :month ORDER BY effective_from DESC, version DESC LIMIT 1
    """
)

# version 1 is written by migration 0070; a database emptied since (tests) gets it back
ENSURE_DEFAULT = text(
    """
    INSERT INTO tax_table (version, name, effective_from, rules, created_by)
    SELECT 1, :name, DATE '2019-01-01', CAST(:rules AS jsonb), 'default'
     WHERE NOT EXISTS (SELECT 1 FROM tax_table)
    ON CONFLICT (version) DO NOTHING
    """
)

# Items that count for tax: withheld and not reversed (reserved or paid; failed, returned and
# cancelled items gave their tax back).
MONTHLY = text(
    """
    SELECT i.distributor_id, d.code, t.name_enc, t.resident_id_enc, i.currency,
           count(*) AS payments, sum(i.amount) AS gross, sum(i.tax) AS tax, sum(i.amount - i.tax) AS net
      FROM payout_item i
      JOIN distributor d ON d.id = i.distributor_id
      LEFT JOIN tax_identity t ON t.distributor_id = i.distributor_id
     WHERE i.tax_month = :month AND i.status IN ('reserved', 'paid')
     GROUP BY i.distributor_id, d.code, t.name_enc, t.resident_id_enc, i.currency
     ORDER BY i.distributor_id
    """
)

STATEMENT = text(
    """
    SELECT i.tax_month AS month, i.currency, count(*) AS payments, sum(i.amount) AS gross, sum(i.tax) AS tax,
           sum(i.amount - i.tax) AS net
      FROM payout_item i
     WHERE i.distributor_id = :d AND i.status = 'paid'
       AND i.tax_month >= make_date(:year, 1, 1) AND i.tax_month < make_date(:year + 1, 1, 1)
     GROUP BY i.tax_month, i.currency ORDER BY i.tax_month, i.currency
    """
)


NOW = text("SELECT now()")


LOCK_TAX_TABLES = text("LOCK TABLE tax_table IN SHARE ROW EXCLUSIVE MODE")


LAST_TAX_TABLE_VERSION = text("SELECT coalesce(max(version), 0) FROM tax_table")
