"""What the benchmarks share: a throwaway PostgreSQL database, the app started the
production way in its own process group, bulk seeding, and signing in through the API.

Used by the ``bench`` package (``python -m bench``, i.e. ``make bench``), by
``bench/profile_vs_referrals.py`` (profile cost against referral count) and the other
benchmarks in ``bench/``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = "postgresql+psycopg2://postgres@127.0.0.1:5432"
SECRET_KEY = "bench"  # the server's SECRET_KEY; the bench hashes codes with it too
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # the app's invite-code alphabet (32 letters)
OWNER_CODE_BASE = 1 << 29  # owners' codes are encoded from numbers no referral uses
SERVER_START_TIMEOUT = 900  # seconds; the first start builds the frontend
STOP_GRACE = 30  # seconds between SIGINT and SIGKILL

# The settings every benchmark server runs with. Rate limits are off: every request of a
# benchmark comes from 127.0.0.1, and the per-IP limit would refuse all but the first 30
# codes in ten minutes.
BENCH_SERVER_ENV = {
    "SECRET_KEY": SECRET_KEY,
    "DEMO_MODE": "true",
    "SMS_DELAY_SECONDS": "0",
    "RATE_LIMITS_ENABLED": "false",
    # Thousands of tabs from one address (live_pages.py): no per-address socket limit.
    "MAX_WEBSOCKETS_PER_CLIENT": "0",
}

# Referral n (a global counter across owners) gets phone +7900nnnnnnn, an invite code
# that is n written in base 32 with the app's alphabet (so unique), and an activation
# time that ties in pairs (so the (activated_at, id) keyset tie-break is exercised).
def invite_code_sql(number: str = "g") -> str:
    """SQL for the invite code encoding the integer expression ``number`` (bind ``:alphabet``)."""
    return " || ".join(f"substr(:alphabet, (({number} >> {shift}) & 31) + 1, 1)" for shift in range(25, -1, -5))


SEED_REFERRALS_SQL = text(
    f"""
    INSERT INTO users (phone_number, invite_code, invited_by_id, activated_at, invited_count, created_at)
    SELECT '+7900' || lpad(g::text, 7, '0'),
           {invite_code_sql()},
           :owner,
           CAST(:base AS timestamptz) + ((g - :first) / 2) * interval '1 second',
           0,
           CAST(:base AS timestamptz) + ((g - :first) / 2) * interval '1 second' - interval '1 hour'
    FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g
    """
)


def encode_code(n: int) -> str:
    """The same base-32 encoding as SEED_REFERRALS_SQL, in Python (for owners)."""
    return "".join(ALPHABET[(n >> shift) & 31] for shift in range(25, -1, -5))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def sigterm_as_interrupt() -> None:
    """SIGTERM (e.g. from a CI timeout) cleans up like Ctrl-C does."""

    def _on_sigterm(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, _on_sigterm)


def domain_modules() -> None:
    """Make ``referral_app`` importable here with the server's SECRET_KEY.

    Call before the first ``import referral_app...``: its settings are read at import,
    and ``hash_code`` must key codes exactly as the server does.
    """
    os.environ["SECRET_KEY"] = SECRET_KEY
    os.environ.setdefault("DATABASE_URL", f"{PG_SERVER}/postgres")  # never the SQLite file
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------- database


def create_database(name: str) -> str:
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{PG_SERVER}/{name}"


def drop_database(name: str) -> None:
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def throwaway_database(prefix: str = "referral_bench") -> Iterator[tuple[str, str]]:
    """A fresh database ``<prefix>_<random>``; yields (name, URL); dropped on exit, also on failure."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    url = create_database(name)
    log(f"created database {name}")
    try:
        yield name, url
    finally:
        drop_database(name)
        log(f"dropped database {name}")


def pg_version(engine: Engine) -> str:
    with engine.connect() as conn:
        return " ".join(conn.execute(text("SELECT version()")).scalar_one().split()[:2])


def vacuum_analyze(engine: Engine, table: str | None = None) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM ANALYZE {table}" if table else "VACUUM ANALYZE"))


@dataclass
class Owner:
    """A user seeded with ``size`` referrals; ``results`` is for the benchmark's numbers."""

    size: int
    phone: str
    invite_code: str
    id: int = 0
    token: str = ""
    deep_cursor: str | None = None
    deep_position: int = 0
    results: dict[str, Any] = field(default_factory=dict)


def make_owners(sizes: list[int], phone_prefix: str = "+7912000000") -> list[Owner]:
    """Owners for ``sizes`` (at most 9), with phones ``<prefix><i>`` and codes no referral uses."""
    return [Owner(size, f"{phone_prefix}{i}", encode_code(OWNER_CODE_BASE + i)) for i, size in enumerate(sizes, 1)]


def seed(engine: Engine, owners: list[Owner]) -> float:
    """Insert the owners and their referrals in bulk; return the seconds it took."""
    started = time.perf_counter()
    base = datetime(2025, 1, 1, tzinfo=UTC)
    next_n = 1
    with engine.begin() as conn:
        for owner in owners:
            owner.id = conn.execute(
                text(
                    "INSERT INTO users (phone_number, invite_code, invited_count, created_at) "
                    "VALUES (:phone, :code, :count, :created) RETURNING id"
                ),
                {"phone": owner.phone, "code": owner.invite_code, "count": owner.size, "created": base},
            ).scalar_one()
            if owner.size:
                conn.execute(
                    SEED_REFERRALS_SQL,
                    {
                        "alphabet": ALPHABET,
                        "owner": owner.id,
                        "first": next_n,
                        "last": next_n + owner.size - 1,
                        "base": base + timedelta(days=1),
                    },
                )
                next_n += owner.size
        counts = dict(
            conn.execute(
                text("SELECT invited_by_id, count(*) FROM users WHERE invited_by_id IS NOT NULL GROUP BY 1")
            ).all()
        )
    for owner in owners:
        if counts.get(owner.id, 0) != owner.size:
            seeded = counts.get(owner.id, 0)
            raise RuntimeError(f"seeded {seeded} referrals for owner {owner.phone}, wanted {owner.size}")
    vacuum_analyze(engine)
    return time.perf_counter() - started


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _proc_status(pid: int) -> str:
    return Path(f"/proc/{pid}/status").read_text()


def _status_kb(status: str, key: str) -> int | None:
    match = re.search(rf"^{key}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else None


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


class Server:
    """``scripts/run.sh`` (or ``command``) in its own process group, output to a log file.

    ``env`` overrides :data:`BENCH_SERVER_ENV` (e.g. ``{"SMS_DELAY_SECONDS": "1.5"}``).
    ``command`` and ``ready_paths`` start another server the same way (the floor app);
    ``{port}`` in the command is replaced with the port.
    """

    def __init__(self, port: int, database_url: str, log_path: Path, env: dict[str, str] | None = None,
                 command: list[str] | None = None, ready_paths: tuple[str, ...] = ("/", "/api/openapi.json")) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.database_url = database_url
        self.log_path = log_path
        self.settings = {**BENCH_SERVER_ENV, **(env or {})}
        self.command = [part.replace("{port}", str(port)) for part in (command or ["scripts/run.sh"])]
        self.ready_paths = ready_paths
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start and wait until every ``ready_paths`` answers 200; return the seconds it took."""
        env = {**os.environ, "PORT": str(self.port), "DATABASE_URL": self.database_url, **self.settings}
        started = time.monotonic()
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        log(f"server pid {self.proc.pid} (process group {self.proc.pid}), log {self.log_path}")
        deadline = started + SERVER_START_TIMEOUT
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    if all(client.get(self.url + path).status_code == 200 for path in self.ready_paths):
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                time.sleep(1)
        raise RuntimeError(f"server not ready after {SERVER_START_TIMEOUT} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def pids(self) -> list[int]:
        """Every live process in the server's group (kernel threads and zombies excluded)."""
        found = []
        if self.proc is None:
            return found
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.getpgid(int(entry.name)) != self.proc.pid:
                    continue
                if _status_kb(_proc_status(int(entry.name)), "VmRSS") is None:
                    continue
            except (OSError, ProcessLookupError):
                continue
            found.append(int(entry.name))
        return found

    def processes(self) -> list[tuple[int, str, int]]:
        """(pid, command line, peak RSS in kB) of every process in the server's group."""
        found = []
        for pid in self.pids():
            try:
                status = _proc_status(pid)
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            peak = _status_kb(status, "VmHWM")
            if peak is not None:
                found.append((pid, cmdline.strip(), peak))
        return found

    def rss_kb(self) -> dict[int, int]:
        """Current RSS (kB) of each process in the group."""
        found = {}
        for pid in self.pids():
            try:
                rss = _status_kb(_proc_status(pid), "VmRSS")
            except OSError:
                continue
            if rss is not None:
                found[pid] = rss
        return found

    def worker_pids(self) -> list[int]:
        """The processes that serve the requests: the group's Python processes whose parent is in the group.

        Reflex runs Granian's workers as children of the supervisor (``reflex run``, the group's
        leader): one without Redis, ``GRANIAN_WORKERS`` with it (``scripts/run.sh``). With the
        fork start method the supervisor has imported the app too, so it is about as large as a
        worker but serves nothing.
        """
        pids = set(self.pids())
        found = []
        for pid, cmd, _ in self.processes():
            try:
                if "python" in cmd and parent_pid(pid) in pids:
                    found.append(pid)
            except (OSError, IndexError, ValueError):
                continue
        return sorted(found)

    def worker_pid(self) -> int:
        """The first of :meth:`worker_pids` (the only one without Redis)."""
        found = self.worker_pids()
        if not found:
            raise RuntimeError("no worker process in the server's group")
        return found[0]

    def worker_rss_kb(self) -> dict[int, int]:
        """Current RSS (kB) of each worker process (the supervisor left out)."""
        rss = self.rss_kb()
        found = {}
        for pid, kb in rss.items():
            try:
                if parent_pid(pid) in rss:
                    found[pid] = kb
            except (OSError, IndexError, ValueError):
                continue
        return found

    def _group_alive(self) -> bool:
        assert self.proc is not None
        self.proc.poll()  # reap our child, or it would count as alive
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGINT to the process group (Ctrl-C); SIGKILL if it still runs after ``grace`` seconds."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGINT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self._group_alive():
            time.sleep(0.2)
        if self._group_alive():
            log(f"server still running {grace:.0f} s after SIGINT; SIGKILL to process group {pgid}")
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


@contextmanager
def running_server(database_url: str, log_path: Path, env: dict[str, str] | None = None,
                   **options: Any) -> Iterator[Server]:
    """A started :class:`Server` on a free port, stopped on exit (also on failure or Ctrl-C).

    ``options``: :class:`Server`'s ``command`` and ``ready_paths``.
    """
    server = Server(free_port(), database_url, log_path, env, **options)
    try:
        settings = " ".join(f"{k}={v}" for k, v in server.settings.items() if k != "SECRET_KEY")
        log(f"starting {' '.join(server.command[:3])} on port {server.port} ({settings})")
        server.start_seconds = server.start()
        log(f"server ready at {server.url} after {server.start_seconds:.0f} s")
        yield server
    except Exception:
        print(f"--- server log tail ({server.log_path}) ---\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        log("stopping the server (SIGINT to its process group)")
        server.stop()


# --------------------------------------------------------------------------- API


def sign_in(client: httpx.Client, phone: str) -> str:
    """A session token for ``phone``, the way a client gets one: request a code, send it back."""
    issued = client.post("/api/v1/auth/request_code/", json={"phone_number": phone})
    issued.raise_for_status()
    signed = client.post(
        "/api/v1/auth/auth_code/",
        json={"phone_number": phone, "confirmation_code": issued.json()["confirmation_code"]},
    )
    signed.raise_for_status()
    return signed.json()["token"]


def find_deep_cursor(client: httpx.Client, owner: Owner) -> None:
    """Walk the whole list with limit=100; keep the last cursor (a page near the end).

    Also checks that the walk sees every referral exactly once.
    """
    headers = {"Authorization": f"Bearer {owner.token}"}
    cursor, seen, phones = None, 0, set()
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        response = client.get("/api/v1/profile/me/referrals/", params=params, headers=headers)
        response.raise_for_status()
        page = response.json()
        seen += len(page["items"])
        phones.update(item["phone_number"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
        owner.deep_cursor, owner.deep_position = cursor, seen
    if seen != owner.size or len(phones) != owner.size:
        raise RuntimeError(
            f"walking {owner.phone}'s list saw {seen} items ({len(phones)} distinct), wanted {owner.size}"
        )


# --------------------------------------------------------------------------- report


def environment() -> dict[str, str]:
    def run(*cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown CPU")
    return {
        "date": run("date", "-u"),
        "nproc": run("nproc"),
        "cpu": cpu,
        "commit": run("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


# --------------------------------------------------------------------------- tools and measurements


def ensure_wrk() -> str:
    """The path of wrk, installed from Debian with apt-get when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("wrk is missing; install it as root: apt-get install -y wrk")
    log("installing wrk (apt-get install -y wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True, check=False).returncode:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def tool_version(*cmd: str) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    text_out = (result.stdout or result.stderr).strip()
    return text_out.splitlines()[0].split(" Copyright")[0] if text_out else "?"


def with_roles(processes: list[tuple[int, str, int]]) -> list[tuple[int, str, str, int]]:
    """(pid, role, command, peak kB): the worker is the process whose parent is in the group too."""
    pids = {pid for pid, _, _ in processes}
    found = []
    for pid, cmd, kb in processes:
        try:
            worker = parent_pid(pid) in pids
        except (OSError, IndexError, ValueError):
            worker = False
        found.append((pid, "worker (serves the requests)" if worker else "supervisor", cmd, kb))
    return found


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes (backends included), for their CPU time."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def total_cpu(pids: list[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        try:
            found[pid] = cpu_seconds(pid)
        except (OSError, IndexError, ValueError):
            continue
    return found


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores; /proc/stat, idle and iowait excluded)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two snapshots by processes alive in both, plus new ones."""
    return sum(after[pid] - before.get(pid, 0.0) for pid in after)



def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(pct) - 1]


# --------------------------------------------------------------------------- py-spy


def py_spy_path() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy") or "py-spy"



def utcnow():
    from referral_app.domain.clock import utcnow as now

    return now()
