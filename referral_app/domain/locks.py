"""Transaction-scoped locks, so that a check and the write it guards cannot interleave."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session


def lock(db: Session, key: str) -> None:
    """Hold ``key`` until the transaction ends.

    PostgreSQL: an advisory lock on the key's hash. SQLite needs none: every
    transaction there starts with ``BEGIN IMMEDIATE`` and so already holds the one
    write lock (see ``referral_app.infra.db``).
    """
    if db.get_bind().dialect.name == "postgresql":
        db.exec(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), params={"key": key})
