"""The one SQLAlchemy engine of the process and the session factory built on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

from referral_app.settings import settings


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and write-locking transactions."""
    if not url.startswith("sqlite"):
        # A database that stops answering must not hang requests: bound the connect.
        # DB_POOL_SIZE connections are kept per worker process and DB_MAX_OVERFLOW more may
        # open at peaks; a thread that finds all in use waits for one (pool_timeout). Every
        # holder returns its connection without waiting for anything else (a route does its
        # database work in one thread with one session; a Reflex handler likewise), so
        # waiting threads only queue. The API's thread pool has 40 threads; on a 2-core
        # machine 12 connections serve it as fast as 50 (README "Connection budget").
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=30,
            connect_args={"connect_timeout": 5},
        )

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

    return engine


engine = make_engine(settings.database_url)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session for one unit of work; domain functions commit what they change."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@contextmanager
def read_scope() -> Iterator[Connection]:
    """A plain connection for a unit of work that only reads with Core statements.

    The domain's read functions take it as they take a session; without the ORM session's
    bookkeeping a profile read costs about a tenth less CPU (issue 14). Its transaction is
    rolled back when the block ends, as a session's is.
    """
    with engine.connect() as connection:
        yield connection
