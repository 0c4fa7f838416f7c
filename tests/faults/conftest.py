"""Fault tests (SPEC §16): real faults caused on real processes, never on the shared services.

Helpers for the next fault tests to reuse:

* :class:`PrivatePostgres`: a throw-away PostgreSQL cluster (``initdb`` into a temporary
  directory, a free port, ``pg_ctl``; as the ``postgres`` user when the tests run as root,
  since initdb refuses root). ``start()``, ``stop(mode)`` (``"immediate"`` is a crash),
  ``kill()`` (SIGKILL to the postmaster), ``url``. Fixture ``private_postgres`` (module
  scope) gives one started and migrated; it is destroyed after the module.
* :class:`PrivateRedis`: a ``redis-server`` child without persistence on a free port;
  ``start()``, ``kill()`` (SIGKILL), ``stop()``; restartable on the same port. Fixture
  ``private_redis`` (module scope).
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

import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import migrate
from tests.e2e.conftest import RunningApp, _free_port, new_context  # noqa: F401  (fixture; browser is tests/conftest.py's)
from tests.e2e.conftest import pytest_runtest_makereport  # noqa: F401  (screenshots of failed browser tests)

PG_BIN = max(glob.glob("/usr/lib/postgresql/*/bin"), default=None, key=lambda path: int(Path(path).parent.name))
REDIS_SERVER = shutil.which("redis-server")

needs_postgres = pytest.mark.skipif(PG_BIN is None, reason="needs PostgreSQL's initdb and pg_ctl")
needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server")


def _as_postgres(command: list[str]) -> list[str]:
    """initdb refuses to run as root: then run PostgreSQL as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    """A throw-away cluster: trust auth, 127.0.0.1 only, its unix socket in its own directory."""

    start_options = ""  # more ``-c name=value`` for the server

    def __init__(self) -> None:
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="referral-pg-"))
        self.data, self.log = self.dir / "data", self.dir / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run([f"{PG_BIN}/initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command: list[str], timeout: float = 60) -> None:
        subprocess.run(_as_postgres(command), check=True, timeout=timeout, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off {self.start_options}"
        self._run([f"{PG_BIN}/pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop``; ``mode="immediate"`` ends every process at once, like a crash."""
        self._run([f"{PG_BIN}/pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"])

    def kill(self) -> None:
        """SIGKILL to the postmaster (its backends end when they notice); waits until the port is free."""
        pid = self.pid()
        assert pid is not None, "PostgreSQL is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _port_open(self.port):
            assert time.monotonic() < deadline, "PostgreSQL still listens after SIGKILL"
            time.sleep(0.1)

    def ensure_running(self) -> None:
        if self.pid() is None or not _port_open(self.port):
            (self.data / "postmaster.pid").unlink(missing_ok=True)  # left by a SIGKILL
            self.start()

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def destroy(self) -> None:
        if self.pid() is not None:
            try:
                self.stop("immediate")
            except (subprocess.SubprocessError, OSError):
                pass
        if (pid := self.pid()) is not None:  # pg_ctl failed: end the postmaster by its PID
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A redis-server child process with no persistence, restartable on the same port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--daemonize", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1).ping()
                return
            except Exception:  # noqa: BLE001 - not up yet
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode}") from None
                time.sleep(0.1)
        raise RuntimeError("redis-server did not answer within 15 s")

    def kill(self) -> None:
        """SIGKILL: everything Redis held (page state, locks) is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.start()


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


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
