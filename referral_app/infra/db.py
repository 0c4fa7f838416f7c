"""The one SQLAlchemy engine of the process; sessions are opened by the unit of work
(``referral_app.services.unit_of_work``), never on the event loop."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import create_engine

from referral_app.settings import settings


# A pooled connection that has rested this long is pinged before use; under load the pool's
# connections come back within milliseconds and are used unpinged. A PostgreSQL restart
# (a shutdown checkpoint, then recovery) takes longer, so a connection from before it is
# pinged. Were a server back sooner, one request per worker would get the 503 of a lost
# connection, after which SQLAlchemy replaces every older connection of the pool.
PING_AFTER_IDLE_SECONDS = 0.25

# What a database that is down, refusing, unreachable or saturated raises (a statement's own
# errors, e.g. a broken constraint, are IntegrityError and others, never these): the API
# answers them 503 with Retry-After (api/errors.py, infra/responses.py), the pages with a message (state/base.py).
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)
# Seconds a client is asked to wait before trying again (Retry-After, RFC 9110 §10.2.3).
RETRY_AFTER_SECONDS = 5


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and write-locking transactions."""
    if not url.startswith("sqlite"):
        # A database that stops answering must not hang requests: the connect and the wait
        # for a pooled connection are bounded (DATABASE_CONNECT_TIMEOUT_SECONDS,
        # DATABASE_POOL_TIMEOUT_SECONDS); either failing is a 503 with Retry-After
        # (api/errors.py, and a message on the pages: referral_app.py).
        # DB_POOL_SIZE connections are kept per worker process and DB_MAX_OVERFLOW more may
        # open at peaks; a thread that finds all in use waits for one (pool_timeout). Every
        # holder returns its connection without waiting for anything else (a route does its
        # database work in one thread with one session; a Reflex handler likewise), so
        # waiting threads only queue. The API's thread pool has 40 threads; on a 2-core
        # machine 12 connections serve it as fast as 50 (README "Connection budget").
        engine = create_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.database_pool_timeout_seconds,
            connect_args={"connect_timeout": settings.database_connect_timeout_seconds},
        )
        forbid_on_event_loop(engine)  # first: a checkout on the loop is refused before any ping
        _ping_after_idle(engine)
        return engine

    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - driver hook
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover - driver hook
        # SQLite has one writer; taking the write lock up front makes every
        # transaction serializable instead of failing on a lock upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    forbid_on_event_loop(engine)
    return engine


def _ping_after_idle(engine: Engine) -> None:
    """``pool_pre_ping``, but only for connections that were idle (issue 14: the ping was
    a ``SELECT 1`` round trip on every request, ~5% of a profile read's CPU).

    A dead connection is replaced as with ``pool_pre_ping``: a ``DisconnectionError`` from a
    checkout listener makes the pool invalidate it and check out a fresh one (SQLAlchemy's
    "Disconnect Handling - Pessimistic", custom ping). A statement that finds a connection
    dead anyway makes SQLAlchemy invalidate every older connection of the pool.
    """

    @event.listens_for(engine, "checkin")
    def _rested_from(_dbapi_conn, record):
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_rested(dbapi_conn, record, _proxy):
        checked_in_at = record.info.get("checked_in_at")  # none yet for a new connection
        if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(f"a pooled connection did not answer: {error}") from error


class SqlOnEventLoop(RuntimeError):
    """A database connection was asked for on a thread that runs an event loop.

    Every page and request of the worker would wait for that statement; database work runs
    in a worker thread through ``referral_app.services.unit_of_work``.
    """


def forbid_on_event_loop(engine: Engine) -> None:
    """Refuse (raise :class:`SqlOnEventLoop`) a pool checkout on a thread running an event loop.

    The check is one C call per checkout (``asyncio._get_running_loop``, which the stdlib
    exposes for exactly this kind of test); it guards the rule "no SQL on the event loop"
    in production as in tests (``tests/services/test_no_sql_on_the_loop.py``).
    """
    event.listen(engine, "checkout", refuse_on_event_loop)


def refuse_on_event_loop(_dbapi_conn, _record, _proxy) -> None:
    """The checkout listener of :func:`forbid_on_event_loop`: raises :class:`SqlOnEventLoop` on a
    loop's thread. The browser tests remove it from their own engine (``tests/e2e/conftest.py``):
    their process is not the app, and Playwright's sync API runs a loop in its main thread."""
    if asyncio._get_running_loop() is not None:
        raise SqlOnEventLoop(
            "a database connection was checked out on the event loop's thread; "
            "call a service (referral_app.services), which runs database work in a worker thread"
        )


engine = make_engine(settings.database_url)
