"""A site's whole documents (structure, programme, savings): one JSON document per site and table,
replaced whole, with who wrote it and when."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

# table → its document column; names are ours, never the caller's input
COLUMNS = {"site_structures": "structure", "site_programmes": "programme", "site_savings": "savings"}


def store(conn: sa.Connection, table: str, site_id: str, doc_json: str, by: str, now: datetime) -> bool:
    """Write the site's document; True if it changed (an identical one leaves the row as it was)."""
    col = COLUMNS[table]
    return conn.execute(sa.text(
        f"INSERT INTO {table} (site_id, {col}, updated_by, updated_at)"
        " VALUES (:s, CAST(:doc AS jsonb), :by, :now)"
        f" ON CONFLICT (site_id) DO UPDATE SET {col} = EXCLUDED.{col},"
        " updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at"
        f" WHERE {table}.{col} IS DISTINCT FROM EXCLUDED.{col}"
        " RETURNING 1"), {"s": site_id, "doc": doc_json, "by": by, "now": now}).first() is not None


def read(conn: sa.Connection, table: str, site_id: str) -> object | None:
    """The site's document as stored (parsed JSON), None when it has none."""
    col = COLUMNS[table]
    return conn.execute(sa.text(f"SELECT {col} FROM {table} WHERE site_id = :s"), {"s": site_id}
                        ).scalar_one_or_none()
