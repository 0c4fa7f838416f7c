"""Private PostgreSQL and Redis servers for tests that stop, kill or restart them: never the
shared ones (SPEC §16; the developers' guide).

* :class:`PrivatePostgres`: a throw-away PostgreSQL cluster (``initdb`` into a temporary
  directory, a free port, ``pg_ctl``; as the ``postgres`` user when the tests run as root,
  since initdb refuses root). ``start()``, ``stop(mode)`` (``"immediate"`` is a crash),
  ``kill()`` (SIGKILL to the postmaster), ``url``.
* :class:`PrivateRedis`: a ``redis-server`` child without persistence on a free port;
  ``start()``, ``kill()`` (SIGKILL), ``stop()``; restartable on the same port.
* :func:`private_redis_url`: a context manager that starts a :class:`PrivateRedis` and
  yields its URL, for tests that only need a Redis of their own.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        """Start redis-server and wait until it answers. Its first start takes another free port
        if the one picked was taken meanwhile (another test process may grab the same free port
        between the pick and the bind); a restart keeps its port, as a restarted server would."""
        for _ in range(3):
            if self._start_on_port():
                self._started = True
                return
            if getattr(self, "_started", False):
                break
            self.port = _free_port()
        raise RuntimeError(f"redis-server exited with {self.process.returncode}: {self._log.strip()[-500:]}")

    def _start_on_port(self) -> bool:
        import redis

        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--daemonize", "no"]
        with tempfile.TemporaryFile("w+") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1).ping()
                    return True
                except Exception:  # noqa: BLE001 - not up yet
                    if self.process.poll() is not None:
                        log.seek(0)
                        self._log = log.read()
                        return False
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
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def private_redis_url() -> Iterator[str]:
    """A redis-server of the caller's own on a free loopback port (no persistence): its URL."""
    server = PrivateRedis()
    try:
        server.start()
        yield server.url
    finally:
        server.stop()
