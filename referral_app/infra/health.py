"""Health of the services the app needs: the database and, when configured, Redis.

Each check is synchronous and runs in a thread of its own with a bounded wait, so a
database or Redis that hangs makes the report say "unavailable" instead of hanging it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from referral_app.infra import db
from referral_app.settings import settings

logger = logging.getLogger(__name__)

OK, UNAVAILABLE, NOT_CONFIGURED = "ok", "unavailable", "not configured"
DATABASE_TIMEOUT_SECONDS = 3.0
REDIS_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class HealthReport:
    database: str
    redis: str

    @property
    def ok(self) -> bool:
        return UNAVAILABLE not in (self.database, self.redis)

    def as_dict(self) -> dict[str, str]:
        return {"status": OK if self.ok else UNAVAILABLE, "database": self.database, "redis": self.redis}


def check_database() -> None:
    """``SELECT 1`` on a connection from the app's pool (a rested one is pinged first, infra/db.py)."""
    # A raw pooled connection: a SQLAlchemy Connection would start the app's SQLite
    # write transaction (BEGIN IMMEDIATE) just to read a constant.
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        finally:
            cursor.close()
    finally:
        connection.close()


def check_redis(url: str, timeout: float = REDIS_TIMEOUT_SECONDS) -> None:
    """PING Redis on a fresh connection with short connect and read timeouts."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
    try:
        client.ping()
    finally:
        client.close()


async def _status(name: str, check, timeout: float) -> str:
    try:
        await asyncio.wait_for(asyncio.to_thread(check), timeout)
    except Exception as error:  # noqa: BLE001 - any failure means "unavailable"
        # The class and the first line only: SQLAlchemy's text would include the statement.
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[:1]
        logger.warning(
            "%s unavailable: %s", name, type(error).__name__, extra={"service": name, "reason": "".join(reason)}
        )
        return UNAVAILABLE
    return OK


async def check_health() -> HealthReport:
    """Check the database and Redis at the same time; never longer than the larger timeout."""
    url = settings.redis_url.strip()
    database = _status("database", check_database, DATABASE_TIMEOUT_SECONDS)
    if not url:
        return HealthReport(database=await database, redis=NOT_CONFIGURED)
    database_status, redis_status = await asyncio.gather(
        database, _status("redis", lambda: check_redis(url), REDIS_TIMEOUT_SECONDS * 2)
    )
    return HealthReport(database=database_status, redis=redis_status)
