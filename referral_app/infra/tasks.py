"""Background work of the server process."""

from __future__ import annotations

import asyncio
import logging

from referral_app.services import maintenance
from referral_app.settings import settings

logger = logging.getLogger(__name__)


async def periodic_cleanup() -> None:
    """Purge expired data every ``CLEANUP_INTERVAL_SECONDS`` (0 turns it off)."""
    if settings.cleanup_interval_seconds <= 0:
        return
    while True:
        await asyncio.sleep(settings.cleanup_interval_seconds)
        try:
            logger.info("cleanup: %s", await maintenance.purge_expired())
        except Exception:  # keep the loop alive if the database is briefly away
            logger.exception("cleanup failed")
