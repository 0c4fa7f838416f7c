"""Test setup: every run gets databases of its own, made before the app is imported.

``DATABASE_URL`` picks the engine: unset or SQLite gives temporary SQLite files; a
PostgreSQL URL names a server on which fresh databases are created and dropped after.

Under pytest-xdist (``make test-fast``) every worker process imports this module, so each
worker has its own: a temporary directory of its own for the SQLite files, PostgreSQL
databases named after the worker (``referral_test_gw0_main_1a2b3c4d``), and drops only
those it made at its end.

Tiers: every test that needs a browser or a process the test starts (the app through
scripts/run.sh, nginx, newman, a private PostgreSQL or Redis) carries the ``e2e`` marker:
everything under tests/e2e/ and tests/faults/ gets it here, a test elsewhere says so with
``@pytest.mark.e2e``. ``make test-fast`` runs the rest (``-m "not e2e"``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
_SERVER_URL = os.environ.get("DATABASE_URL", "")
IS_POSTGRES = _SERVER_URL.startswith("postgres")
# "gw0", "gw1", ... in a pytest-xdist worker (set before this module is imported); "" otherwise.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_TMP = Path(tempfile.mkdtemp(prefix=f"referral-tests-{WORKER}-" if WORKER else "referral-tests-"))
_created: list[str] = []


def _server_url():
    # Importing referral_app.settings here would read the environment too early.
    return make_url(_SERVER_URL).set(drivername="postgresql+psycopg2")


def create_test_database(label: str) -> str:
    """A fresh, empty database on the configured engine, of this process (this xdist worker)
    alone; dropped when its run ends."""
    if not IS_POSTGRES:
        return f"sqlite:///{_TMP / f'{label}.db'}"
    server = _server_url()
    name = f"referral_test_{WORKER + '_' if WORKER else ''}{label}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    _created.append(name)
    return server.set(database=name).render_as_string(hide_password=False)


def _drop_test_databases() -> None:
    if not _created:
        return
    server = _server_url()
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in _created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


os.environ["DATABASE_URL"] = create_test_database("main")
os.environ["SECRET_KEY"] = "test-secret-key-not-for-production"
os.environ["DEMO_MODE"] = "true"
os.environ["DEFAULT_LANGUAGE"] = "en"
# Tests of the send limits switch them on (fixture ``send_limits``); elsewhere they would
# only get in the way of requesting many codes. The simulated SMS gateway does not wait.
os.environ["RATE_LIMITS_ENABLED"] = "false"
os.environ["SMS_DELAY_SECONDS"] = "0"
os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")


def migrate(database_url: str) -> None:
    """Apply the Alembic migrations to ``database_url``, as ``reflex db migrate`` does."""
    from alembic import command
    from alembic.config import Config

    from referral_app.settings import settings

    previous = settings.database_url
    settings.database_url = database_url
    try:
        command.upgrade(Config(str(ROOT / "alembic.ini")), "head")
    finally:
        settings.database_url = previous


def pytest_sessionfinish(session, exitstatus):
    from referral_app.infra.db import engine

    engine.dispose()
    _drop_test_databases()
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def engine():
    from referral_app.infra.db import engine as app_engine
    from referral_app.settings import settings

    migrate(settings.database_url)
    return app_engine


@pytest.fixture
def db(engine):
    """A session on the test database; all rows are removed after the test."""
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as session:
        yield session
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET invited_by_id = NULL, activated_at = NULL"))
        for table in ("staff_actions", "webhook_attempts", "webhook_events", "staff_login_failures", "staff_sessions",
                      "staff_accounts", "code_sends", "auth_sessions", "confirmation_codes", "users"):
            conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def send_limits(monkeypatch):
    """Send limits on, as in production."""
    from referral_app.settings import settings

    monkeypatch.setattr(settings, "rate_limits_enabled", True)
    return settings


@pytest.fixture(autouse=True)
def fresh_client_log_limits(monkeypatch):
    """Each test starts with every client's log budget full (infra/logs.py): most in-process
    requests come from one or two addresses, and a test must not lose a warning it checks
    to the tests before it."""
    from referral_app.infra import logs
    from referral_app.settings import settings

    monkeypatch.setattr(logs, "client_records", logs.ClientLogLimiter(settings.log_records_per_client_minute, timer=False))


@pytest.fixture
def sms():
    from referral_app.domain.sms import DemoSmsSender

    return DemoSmsSender()


E2E_DIRECTORIES = (ROOT / "tests" / "e2e", ROOT / "tests" / "faults")


@pytest.hookimpl(tryfirst=True)  # before -m selects on the marker
def pytest_collection_modifyitems(config, items):
    """The ``e2e`` marker on every test under tests/e2e/ and tests/faults/, and those tests
    last, after every other (browser tests among them): they are the slowest, and Playwright's
    sync API keeps an event loop running in the main thread until the session ends
    (asyncio.run() in any later test would fail). Whole files go last, so that under
    ``--dist loadfile --no-loadscope-reorder`` (make test-e2e) a worker is sent every other
    file before any of these."""
    in_directories = set()
    for item in items:
        if any(item.path.resolve().is_relative_to(directory) for directory in E2E_DIRECTORIES):
            item.add_marker(pytest.mark.e2e)
            in_directories.add(item)
    items.sort(key=lambda item: item in in_directories or "browser" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole run, shared by tests/e2e and tests/faults: Playwright's sync
    API keeps an event loop running in the main thread while it is open, so a second session
    fixture (one per folder) would fail to start beside the first."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
