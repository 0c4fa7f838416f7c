"""Background work of the server process."""

from __future__ import annotations

import asyncio
import logging

from referral_app.infra.db import session_scope
from referral_app.domain.maintenance import purge_expired
from referral_app.settings import settings

logger = logging.getLogger(__name__)


def _purge_once() -> None:
    with session_scope() as db:
        purged = purge_expired(db)
    logger.info("cleanup: %s", purged)


async def periodic_cleanup() -> None:
    """Purge expired data every ``CLEANUP_INTERVAL_SECONDS`` (0 turns it off)."""
    if settings.cleanup_interval_seconds <= 0:
        return
    while True:
        await asyncio.sleep(settings.cleanup_interval_seconds)
        try:
            await asyncio.to_thread(_purge_once)
        except Exception:  # keep the loop alive if the database is briefly away
            logger.exception("cleanup failed")
