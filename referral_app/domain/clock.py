"""Time source. Times are timezone-aware UTC; tests pass ``now`` explicitly instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)
