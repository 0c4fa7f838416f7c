"""SQL that differs between the two supported databases (PostgreSQL and SQLite)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session


def insert(db: Session, model: Any) -> Any:
    """An INSERT that supports ``ON CONFLICT`` on the session's database (both have it)."""
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model)
