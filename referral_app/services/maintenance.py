"""The clean-up use case (the background loop and ``python -m referral_app cleanup``)."""

from __future__ import annotations

from referral_app.domain import maintenance
from referral_app.domain.maintenance import Purged
from referral_app.services import unit_of_work


async def purge_expired() -> Purged:
    """Delete expired codes, sessions, send-log rows, staff sessions and delivered webhook events."""
    return await unit_of_work.run(maintenance.purge_expired)
