"""The one SQLAlchemy engine of the process and the session factory built on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from referral_app.settings import settings


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and write-locking transactions."""
    if not url.startswith("sqlite"):
        # A database that stops answering must not hang requests: bound the connect.
        # The pool keeps a connection for each thread of the API's thread pool (40), so busy
        # times do not open and close connections (a new PostgreSQL backend each), plus a few
        # for Reflex's event handlers; a thread waiting for a connection can always get one
        # (40 threads waiting on a smaller pool, while requests holding connections wait for
        # a thread, stalled once).
        return create_engine(
            url, pool_pre_ping=True, pool_size=40, max_overflow=10, connect_args={"connect_timeout": 5}
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
