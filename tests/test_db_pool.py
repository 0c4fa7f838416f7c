"""The pool's ping of rested connections (referral_app/infra/db.py): a connection the server
dropped is replaced before a request uses it, as pool_pre_ping did."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from referral_app.infra.db import PING_AFTER_IDLE_SECONDS, make_engine
from tests.conftest import IS_POSTGRES

pytestmark = pytest.mark.skipif(not IS_POSTGRES, reason="the ping is PostgreSQL's (SQLite has no server to lose)")


def _backend_pid(connection) -> int:
    return connection.execute(text("SELECT pg_backend_pid()")).scalar()


@pytest.fixture
def own_engine(engine):
    one = make_engine(engine.url.render_as_string(hide_password=False))
    yield one
    one.dispose()


def _terminate(engine, pid: int) -> None:
    with engine.connect() as other:
        assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    # The server ends the backend asynchronously; wait until it is gone.
    deadline = time.monotonic() + 5
    with engine.connect() as other:
        while other.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar():
            assert time.monotonic() < deadline, "the backend was not terminated"
            time.sleep(0.02)


def test_a_rested_connection_the_server_dropped_is_replaced_before_use(engine, own_engine):
    with own_engine.connect() as connection:
        dropped = _backend_pid(connection)
    _terminate(engine, dropped)
    time.sleep(PING_AFTER_IDLE_SECONDS + 0.05)

    with own_engine.connect() as connection:  # no error: the ping found it dead
        assert _backend_pid(connection) != dropped
        assert connection.execute(text("SELECT 1")).scalar() == 1
