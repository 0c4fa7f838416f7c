"""Shared helpers for the domain tests: fixed times, phone numbers, database snapshots."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

# Tests pass ``now`` explicitly; this is the moment most of them happen at.
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

TABLES = ("users", "confirmation_codes", "auth_sessions")


def phone(n: int) -> str:
    """The n-th of a series of valid Russian mobile numbers, in E.164."""
    return f"+7912{n:07d}"


def snapshot(db) -> dict[str, list[tuple]]:
    """Every row of every table, to show that a refused request changed nothing.

    Ends the session's read transaction so it holds no lock afterwards.
    """
    rows = {table: [tuple(row) for row in db.exec(text(f"SELECT * FROM {table} ORDER BY id")).all()] for table in TABLES}
    db.rollback()
    return rows


def rows_of(db, table: str) -> list[dict]:
    """The raw rows of ``table`` as dicts (what is really stored, no ORM in between)."""
    result = [dict(row._mapping) for row in db.exec(text(f"SELECT * FROM {table} ORDER BY id")).all()]
    db.rollback()
    return result
TEST_IP = "192.0.2.1"  # TEST-NET-1: a documentation address
