"""Transaction-scoped locks, so that a check and the write it guards cannot interleave."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

# Built once: text() parses the statement for its bind parameters each time it is made.
_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


def lock(db: Session, key: str) -> None:
    """Hold ``key`` until the transaction ends.

    PostgreSQL: an advisory lock on the key's hash. SQLite needs none: every
    transaction there starts with ``BEGIN IMMEDIATE`` and so already holds the one
    write lock (see ``referral_app.infra.db``).
    """
    if db.get_bind().dialect.name == "postgresql":
        db.exec(_ADVISORY_LOCK, params={"key": key})
