"""Fault tests (SPEC §16): real faults caused on real processes, never on the shared services.

Helpers for the next fault tests to reuse:

* Fixtures ``private_postgres`` (module scope: a :class:`tests.private_services.PrivatePostgres`
  started and migrated, destroyed after the module) and ``private_redis`` (module scope: a
  :class:`tests.private_services.PrivateRedis`, restartable on its port).
* :func:`started_app`: the app as users start it (``scripts/run.sh``, what ``make run``
  runs) on a free port, with the database and environment given; a context manager
  yielding :class:`tests.e2e.conftest.RunningApp` (``url``, ``log``, ``process``), stopped
  with SIGINT at the end.
* :func:`http`, :func:`wait_until`, :func:`api_sign_in`: small clients that never raise for
  an HTTP status and never wait without a bound.
* :func:`server_workers`: the pids of the Granian workers under a started app.

The browser fixtures: ``browser`` is tests/conftest.py's (one Chromium per run), ``new_context``
tests/e2e's. Timings are asserted
with generous bounds: the machine is shared and slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import migrate
from tests.private_services import (  # noqa: F401  (re-exported for tests/e2e/test_recovery.py)
    PG_BIN,
    REDIS_SERVER,
    PrivatePostgres,
    PrivateRedis,
    _port_open,
    needs_postgres,
    needs_redis,
)
from tests.e2e.conftest import RunningApp, _free_port, new_context  # noqa: F401  (fixture; browser is tests/conftest.py's)
from tests.e2e.conftest import pytest_runtest_makereport  # noqa: F401  (screenshots of failed browser tests)

@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL, started and migrated; destroyed after the module."""
    if PG_BIN is None:
        pytest.skip("needs PostgreSQL's initdb and pg_ctl")
    postgres = PrivatePostgres()
    try:
        postgres.start()
        from referral_app.settings import normalize_database_url

        migrate(normalize_database_url(postgres.url))
        yield postgres
    finally:
        postgres.destroy()


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    """A private redis-server; stopped after the module."""
    if REDIS_SERVER is None:
        pytest.skip("needs redis-server")
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextmanager
def started_app(log: Path, database: str, extra_env: dict[str, str] | None = None) -> Iterator[RunningApp]:
    """``scripts/run.sh`` on a free port with ``database`` and ``extra_env``; stopped with SIGINT."""
    env = {"RATE_LIMITS_ENABLED": "false", "SMS_DELAY_SECONDS": "0", **(extra_env or {})}
    app = RunningApp(database, log, env)
    try:
        app.start()
        yield app
    finally:
        app.stop()


def http(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 15) -> tuple[int, dict[str, str], str, float]:
    """(status, headers, body, seconds taken); never raises for an HTTP status. A refused or
    reset connection is status 0 with the error as body."""
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {"Content-Type": "application/json"} if data is not None else {}
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read().decode(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode(), time.monotonic() - started
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        return 0, {}, repr(error), time.monotonic() - started


def wait_until(check: Callable[[], Any], within: float, what: str, every: float = 0.25) -> Any:
    """Call ``check`` until it returns something true; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(every)


def api_sign_in(base_url: str, phone: str) -> str:
    """Request a code (demo mode shows it) and trade it for an API token."""
    status, _, text, _ = http(base_url + "/api/v1/auth/request_code/", "POST", {"phone_number": phone})
    assert status == 200, text
    code = json.loads(text)["confirmation_code"]
    status, _, text, _ = http(base_url + "/api/v1/auth/auth_code/", "POST", {"phone_number": phone,
                                                                            "confirmation_code": code})
    assert status == 200, text
    return json.loads(text)["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def server_workers(app: RunningApp) -> list[int]:
    """The Granian workers of a started app: the children of its server process (run.sh
    ``exec``s the server, so it keeps the pid that was started), except multiprocessing's
    resource tracker."""
    assert app.process is not None
    workers = []
    for child in _children(app.process.pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            workers.append(child)
    return workers
