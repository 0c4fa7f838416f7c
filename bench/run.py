#!/usr/bin/env python3
"""The benchmark (issue 7): API throughput and latency, cost against referral count,
the UI round trip, and memory, measured against the app as it runs in production.

``make bench`` runs it. It needs PostgreSQL on 127.0.0.1:5432 (user ``postgres``, trust) and
Redis on 127.0.0.1:6379 (unless ``--skip-redis``), and installs ``wrk`` with apt-get when it
is missing. In order:

1. a throwaway database ``referral_bench_<random>``; the app started with
   ``scripts/run.sh`` (production build, one port) with ``RATE_LIMITS_ENABLED=false`` and
   ``SMS_DELAY_SECONDS=0``;
2. bulk seeding: owners with 0, 1,000, 10,000 and 100,000 referrals (signed in through the
   API), and before each single-use run its pool: confirmation codes (one per request,
   hashed with the domain's ``hash_code``) or users with a session token (one per
   activation);
3. ``wrk`` (a separate process, Lua scripts in ``bench/wrk/``) at 1, 16 and 64 connections,
   ``--duration`` seconds each: the profile at every size, a deep referral page, sign-in
   with valid codes, code requests, activations; the server's RSS and CPU sampled meanwhile;
4. Chromium (Playwright): "Get code" → code on screen and "Activate" → activated profile,
   50 times each, and the cold first load of the sign-in page;
5. py-spy on the server's worker during an extra run of the slowest path and of the profile;
6. the app restarted with ``SMS_DELAY_SECONDS=1.5`` for the code requests with the delay,
   while one more client reads the profile (does the delay hold up other requests?);
7. the app restarted in the production shape, ``REFLEX_REDIS_URL`` (Redis db 15, flushed before
   and after) and ``WORKERS=2``: the profile (0 and 100,000 referrals), sign-in and activations
   at 16 and 64 connections, as scenarios of their own (``*_2w``).

It writes ``docs/benchmarks.md`` and ``docs/profile-latency.png``. The server is stopped and
the database dropped at the end, also on failure or Ctrl-C.

    .venv/bin/python bench/run.py [--duration 10] [--no-doc] [--skip-ui] [--skip-profile] [--skip-redis]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import Engine

import harness
from harness import ROOT, Owner, Server, log

DOC_PATH = ROOT / "docs" / "benchmarks.md"
CHART_PATH = ROOT / "docs" / "profile-latency.png"
WRK_DIR = Path(__file__).resolve().parent / "wrk"
CONNECTIONS = (1, 16, 64)
SIZES = (0, 1_000, 10_000, 100_000)
PAGE_SIZE = 20
DELAYED_SMS = "1.5"  # SMS_DELAY_SECONDS of the delayed request_code scenario
REDIS_URL = "redis://127.0.0.1:6379/15"  # the two-worker server's REFLEX_REDIS_URL; db 15 is flushed before and after
TWO_WORKERS = 2  # WORKERS of that server (scripts/run.sh: GRANIAN_WORKERS)
CONNECTIONS_2W = (16, 64)
SUFFIX_2W = "_2w"  # scenario names of the two-worker runs
WRK_TIMEOUT = "10s"  # a request slower than this counts as a timeout error
RECOVERY_WAIT = 45  # seconds a stalled server gets to answer again before it is restarted
UI_CHROMIUM = "/usr/bin/chromium"
UI_CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run"]

# Phone number blocks (the 10 digits after +7), apart from the seeded referrals
# (+7900...) and owners (+7912...): every request of a run has a number of its own.
AUTH_PHONES = 9_210_000_000  # auth_code pools
ACTIVATOR_PHONES = 9_220_000_000  # users that activate a code (API and UI)
UI_PHONES = 9_230_000_000  # "Get code" in the browser
REQUEST_PHONES = 9_150_000_000  # request_code runs: 1,000,000 numbers per run
INVITER_PHONE = "+79120009999"
ACTIVATOR_CODE_BASE = 1 << 28  # invite codes of seeded activators; referrals use 1..111,000, owners 1<<29+i

TARGETS = {  # issue 7, on this 2-core machine
    "profile_rps": 1000, "profile_p99_ms": 50, "profile_flat": 0.20, "auth_rps": 500, "activate_rps": 300,
    "delayed_rps": 35, "ui_code_p95_ms": 100, "rss_mb": 300,
}


# --------------------------------------------------------------------------- tools


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
            worker = harness.parent_pid(pid) in pids
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
            found[pid] = harness.cpu_seconds(pid)
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


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkSpec:
    scenario: str  # key of the report's table
    label: str  # the row's first column (e.g. "10,000 referrals")
    path: str
    connections: int
    script: str  # "get", "pool" or "phones" (bench/wrk/<name>.lua after common.lua)
    args: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    pool: int = 0  # single-use items available to the run (0: not single-use)


@dataclass
class WrkResult:
    spec: WrkSpec
    threads: int
    duration_s: float
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    socket_errors: int
    timeouts: int
    non2xx: int
    reused: int
    sample: str
    rss_worker_kb: int = 0  # peak VmRSS of the largest worker process during the run (supervisor left out)
    rss_group_kb: int = 0  # peak of the sum over the server's process group (pages shared after fork counted twice)
    server_cpu: float = 0.0  # cores, the whole process group (1.0 = one core busy all the time)
    postgres_cpu: float = 0.0
    wrk_cpu: float = 0.0
    other_cpu: float = 0.0  # the rest of the machine (other work, the bench itself)
    new_connections: int = 0  # PostgreSQL sessions opened to the database during the run
    loadavg: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.timeouts

    @property
    def cpu_ms(self) -> float:
        """Server CPU milliseconds per answered request (all server processes)."""
        return self.server_cpu * 1000 / self.rps if self.rps else 0.0

    @property
    def pg_ms(self) -> float:
        return self.postgres_cpu * 1000 / self.rps if self.rps else 0.0


class Sampler(threading.Thread):
    """Samples the server's RSS every 100 ms while a run lasts.

    ``worker_kb``: the peak of the largest worker (with several workers, the largest one's
    peak; the supervisor, which serves nothing, is left out); ``group_kb``: the peak of the
    whole group's sum.
    """

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stopping = threading.Event()
        self.worker_kb = 0
        self.group_kb = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            rss = self.server.rss_kb()
            if rss:
                self.group_kb = max(self.group_kb, sum(rss.values()))
            workers = self.server.worker_rss_kb()
            if workers:
                self.worker_kb = max(self.worker_kb, max(workers.values()))
            self.stopping.wait(0.1)

    def stop(self) -> None:
        self.stopping.set()
        self.join()


class Wrk:
    """Runs wrk specs against the server, several at once if asked, and measures around them.

    After every run it checks that the server still answers (``probe``: a profile read). One
    that does not is diagnosed (py-spy dump of the worker, pg_stat_activity), given
    ``RECOVERY_WAIT`` seconds to recover by itself, and restarted otherwise, so that the next
    run starts on a working server; each such stall is kept for the report.
    """

    def __init__(self, server: Server, workdir: Path, duration: int, engine: Engine) -> None:
        self.server = server
        self.workdir = workdir
        self.duration = duration
        self.engine = engine
        self.results: list[WrkResult] = []
        self.stalls: list[dict] = []
        self.probe_headers: dict[str, str] = {}
        self.hwm: list[tuple[str, list]] = []  # peak RSS of servers replaced by a restart
        common = (WRK_DIR / "common.lua").read_text()
        self.scripts = {}
        for name, own in (("get", ""), ("pool", "pool.lua"), ("phones", "phones.lua")):
            path = workdir / f"{name}.lua"
            path.write_text(common + ("\n" + (WRK_DIR / own).read_text() if own else ""))
            self.scripts[name] = path

    def command(self, spec: WrkSpec, duration: int) -> tuple[list[str], int]:
        threads = min(2, spec.connections)
        cmd = ["wrk", f"-t{threads}", f"-c{spec.connections}", f"-d{duration}s", "--timeout", WRK_TIMEOUT,
               "-s", str(self.scripts[spec.script])]
        for name, value in spec.headers.items():
            cmd += ["-H", f"{name}: {value}"]
        cmd.append(self.server.url + spec.path)
        if spec.args:
            cmd += ["--", *[arg.replace("{threads}", str(threads)) for arg in spec.args]]
        return cmd, threads

    def run(self, *specs: WrkSpec, duration: int | None = None, record: bool = True, during=None) -> list[WrkResult]:
        """Run ``specs`` together for ``duration`` seconds; ``during(pid)`` runs meanwhile (py-spy)."""
        duration = duration or self.duration
        loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        server_before = total_cpu(self.server.pids())
        pg_before = total_cpu(postgres_pids())
        machine_before = machine_busy_seconds()
        sessions_before = self.pg_sessions()
        sampler = Sampler(self.server)
        sampler.start()
        procs = []
        for index, spec in enumerate(specs):
            cmd, threads = self.command(spec, duration)
            out_path = self.workdir / f"wrk-{len(self.results) + index}-{spec.scenario}-{spec.connections}.txt"
            out = open(out_path, "w")
            procs.append((spec, threads, out_path, out, subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)))
        try:
            if during is not None:
                during()
            finished = []
            for spec, threads, out_path, out, proc in procs:
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                out.close()
                finished.append((spec, threads, out_path, proc.returncode, usage.ru_utime + usage.ru_stime))
        finally:
            sampler.stop()
            for _, _, _, out, proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    proc.wait()
                out.close()
        server_cpu = cpu_delta(server_before, total_cpu(self.server.pids())) / duration
        pg_cpu = cpu_delta(pg_before, total_cpu(list(pg_before) + postgres_pids())) / duration
        machine = (machine_busy_seconds() - machine_before) / duration
        new_connections = self.pg_sessions() - sessions_before
        all_wrk = sum(cpu for *_, cpu in finished) / duration
        results = []
        for spec, threads, out_path, returncode, wrk_cpu in finished:
            output = out_path.read_text(errors="replace")
            match = re.search(r"^BENCH_RESULT (\{.*\})$", output, re.MULTILINE)
            if returncode != 0 or match is None:
                raise RuntimeError(f"wrk failed ({returncode}) for {spec.scenario}:\n{output[-2000:]}")
            data = json.loads(match.group(1))
            sample = re.search(r"^BENCH_SAMPLE (.*)$", output, re.MULTILINE)
            result = WrkResult(
                spec=spec, threads=threads, duration_s=data["duration_us"] / 1e6, requests=data["requests"],
                p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000, p99_ms=data["p99_us"] / 1000,
                max_ms=data["max_us"] / 1000, mean_ms=data["mean_us"] / 1000,
                socket_errors=data["connect_errors"] + data["read_errors"] + data["write_errors"],
                timeouts=data["timeouts"], non2xx=data["non2xx"], reused=data["reused"],
                sample=sample.group(1)[:300] if sample else "",
                rss_worker_kb=sampler.worker_kb, rss_group_kb=sampler.group_kb,
                server_cpu=server_cpu, postgres_cpu=pg_cpu, wrk_cpu=wrk_cpu / duration, loadavg=loadavg,
                other_cpu=max(0.0, machine - server_cpu - pg_cpu - all_wrk), new_connections=new_connections,
            )
            results.append(result)
            log(
                f"{spec.scenario:<16} {spec.label:<22} c={spec.connections:<3} {result.rps:8.1f} req/s  "
                f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  errors {result.errors}  "
                f"non-2xx {result.non2xx}{'  REUSED ' + str(result.reused) if result.reused else ''}  "
                f"server {server_cpu:.2f} cores, postgres {pg_cpu:.2f}, wrk {result.wrk_cpu:.2f}, "
                f"other {result.other_cpu:.2f}, new PG connections {new_connections}  "
                f"RSS {sampler.worker_kb / 1024:.0f} MiB"
                + (f"  first bad answer: {result.sample[:120]}" if result.sample else "")
            )
            if spec.pool and result.requests > spec.pool:
                log(f"  warning: {result.requests} requests but a pool of {spec.pool}")
        if record:
            self.results.extend(results)
        self.ensure_responsive(specs[0])
        return results

    def pg_sessions(self) -> int:
        """Sessions ever opened to the benchmark's database (PostgreSQL 14+; 0 before)."""
        try:
            with self.engine.connect() as conn:
                return conn.execute(text(
                    "SELECT sessions FROM pg_stat_database WHERE datname = current_database()")).scalar_one() or 0
        except Exception:  # noqa: BLE001 - an older server has no such column
            return 0

    def answers(self, timeout: float) -> bool:
        try:
            response = httpx.get(self.server.url + "/api/v1/profile/me/", headers=self.probe_headers, timeout=timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def ensure_responsive(self, after: WrkSpec) -> None:
        if not self.probe_headers or self.answers(timeout=5):
            return
        started = time.monotonic()
        where = f"{after.scenario} ({after.label}) at {after.connections} connections"
        log(f"STALL: the server does not answer a profile read within 5 s after {where}; diagnosing")
        stall = {"after": where, **self.diagnose(len(self.stalls))}
        log(f"  {stall['summary']}")
        while time.monotonic() - started < RECOVERY_WAIT:
            if self.answers(timeout=2):
                stall["recovered_s"] = time.monotonic() - started
                log(f"  recovered by itself after {stall['recovered_s']:.0f} s")
                break
            time.sleep(1)
        else:
            log(f"  still stuck after {RECOVERY_WAIT} s: restarting the server")
            self.hwm.append((f"before restart #{len(self.stalls) + 1}", with_roles(self.server.processes())))
            self.server.stop(grace=5)
            self.server.start()
            stall["restarted_s"] = time.monotonic() - started
            log(f"  restarted; {stall['restarted_s']:.0f} s lost")
        self.stalls.append(stall)

    def diagnose(self, number: int) -> dict:
        """What the workers' threads and the database connections are doing now."""
        found: dict = {}
        dumps = []
        for pid in self.server.worker_pids() or [None]:  # every worker: the stuck one may not be the first
            try:
                if pid is None:
                    raise RuntimeError("no worker process in the server's group")
                dumps.append(subprocess.run([py_spy_path(), "dump", "--pid", str(pid)],
                                            capture_output=True, text=True, timeout=30, check=False).stdout)
            except (OSError, subprocess.TimeoutExpired, RuntimeError) as error:
                dumps.append(f"py-spy dump of worker {pid} failed: {error}")
        dump = "\n".join(dumps)
        path = self.workdir / f"stall-{number}-py-spy-dump.txt"
        path.write_text(dump)
        found["dump_path"] = path
        states = Counter()
        for block in re.split(r"\n(?=Thread )", dump):
            if not block.startswith("Thread "):
                continue
            if "_do_get (sqlalchemy/pool/impl.py" in block:
                states["waiting for a pooled database connection (QueuePool checkout)"] += 1
            elif "psycopg2" in block or "do_execute (sqlalchemy" in block:
                states["in a database call"] += 1
            elif "AnyIO worker thread" in block:
                states["AnyIO worker thread, idle"] += 1
            else:
                states["other: " + block.splitlines()[1].strip() if len(block.splitlines()) > 1 else "other"] += 1
        found["threads"] = states
        with self.engine.connect() as conn:
            found["connections"] = dict(conn.execute(text(
                "SELECT coalesce(state, '?'), count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1 ORDER BY 2 DESC"
            )).all())
        found["summary"] = (
            "worker threads: " + ", ".join(f"{n} {what}" for what, n in states.most_common())
            + "; the app's PostgreSQL connections: "
            + ", ".join(f"{n} {state}" for state, n in found["connections"].items())
        )
        return found


# --------------------------------------------------------------------------- seeding pools


class Pools:
    """Single-use data for the write scenarios, seeded in bulk right before each run."""

    def __init__(self, engine: Engine, workdir: Path) -> None:
        harness.domain_modules()
        from referral_app.domain import codes, sessions
        from referral_app.models import AuthSession, ConfirmationCode
        from referral_app.settings import settings

        self.engine, self.workdir = engine, workdir
        self.codes, self.sessions, self.settings = codes, sessions, settings
        self.code_table, self.session_table = ConfirmationCode.__table__, AuthSession.__table__
        self.next_auth = 0
        self.next_activator = 0
        self.tokens: list[str] = []
        self.next_request_block = 0
        self.files = 0

    def _write(self, lines: list[str]) -> Path:
        self.files += 1
        path = self.workdir / f"pool-{self.files}.txt"
        path.write_text("\n".join(lines) + "\n")
        return path

    def confirmation_codes(self, count: int) -> Path:
        """``count`` live codes, one per new phone; a file of auth_code request bodies.

        The codes are made and hashed by the domain (``generate_code``, ``hash_code`` with the
        server's SECRET_KEY) and stored as ``issue_code`` stores them, with the app's TTL.
        """
        now = utcnow()
        expires = now + timedelta(seconds=self.settings.code_ttl_seconds)
        rows, lines = [], []
        for _ in range(count):
            phone = f"+7{AUTH_PHONES + self.next_auth}"
            self.next_auth += 1
            code = self.codes.generate_code()
            rows.append({"phone_number": phone, "code_hash": self.codes.hash_code(phone, code), "attempts": 0,
                         "created_at": now, "expires_at": expires})
            lines.append(json.dumps({"phone_number": phone, "confirmation_code": code}))
        with self.engine.begin() as conn:
            conn.execute(insert(self.code_table), rows)
        harness.vacuum_analyze(self.engine, "confirmation_codes")
        return self._write(lines)

    def prepare_signed_in_users(self, count: int) -> None:
        """Create ``count`` users that have not entered a code, each with a live session.

        Done once, before any request creates users: their invite codes are chosen here (the
        base-32 encoding of distinct numbers), and a user signed in through the API later gets a
        random code, which the app retries on a collision; the other way round a bulk insert
        would fail.
        """
        now = utcnow()
        code_sql = harness.invite_code_sql(f"(g + {ACTIVATOR_CODE_BASE})")
        with self.engine.begin() as conn:
            ids = conn.execute(
                text(
                    f"""
                    INSERT INTO users (phone_number, invite_code, invited_count, created_at)
                    SELECT '+' || (:base + g)::text, {code_sql}, 0, :now
                    FROM generate_series(CAST(0 AS integer), CAST(:last AS integer)) AS g
                    ORDER BY g
                    RETURNING id
                    """
                ),
                {"alphabet": harness.ALPHABET, "base": 70_000_000_000 + ACTIVATOR_PHONES, "last": count - 1,
                 "now": now},
            ).scalars().all()
            tokens = [secrets.token_urlsafe(self.sessions.TOKEN_BYTES) for _ in ids]
            expires = now + timedelta(days=self.settings.session_ttl_days)
            conn.execute(
                insert(self.session_table),
                [{"user_id": user_id, "token_hash": self.sessions.hash_token(token), "created_at": now,
                  "expires_at": expires} for user_id, token in zip(ids, tokens, strict=True)],
            )
        harness.vacuum_analyze(self.engine, "users")
        harness.vacuum_analyze(self.engine, "auth_sessions")
        self.tokens = tokens

    def signed_in_users(self, count: int) -> list[str]:
        """Tokens of ``count`` prepared users no run has used yet."""
        first = self.next_activator
        if first + count > len(self.tokens):
            raise RuntimeError(f"only {len(self.tokens)} prepared users; raise the number in main()")
        self.next_activator += count
        return self.tokens[first:first + count]

    def activators(self, count: int) -> Path:
        return self._write(self.signed_in_users(count))

    def request_block(self) -> int:
        """The first of 1,000,000 phone numbers no other request_code run uses."""
        block = REQUEST_PHONES + self.next_request_block * 1_000_000
        self.next_request_block += 1
        return block


def utcnow():
    from referral_app.domain.clock import utcnow as now

    return now()


# --------------------------------------------------------------------------- UI


def ui_measurements(base_url: str, pools: Pools, inviter_code: str, repetitions: int, loads: int) -> dict:
    """Chromium: Get code → code shown, Activate → activated profile, cold first loads."""
    from playwright.sync_api import sync_playwright

    from referral_app.infra.cookies import SESSION_COOKIE
    from referral_app.i18n import translate

    # Timestamps taken in the page: the click event's own time, and the first DOM change
    # after which the target element is rendered with text (a MutationObserver, so the
    # polling of the test driver adds nothing).
    arm = """([button, target]) => {
        window.__bench = {click: null, shown: null};
        document.addEventListener('click', (event) => {
            if (window.__bench.click === null && event.target.closest(button)) window.__bench.click = event.timeStamp;
        }, {capture: true});
        const seen = () => {
            const el = document.querySelector(target);
            return el && el.getClientRects().length > 0 && el.textContent.trim() !== '';
        };
        const observer = new MutationObserver(() => {
            if (window.__bench.click !== null && seen()) { window.__bench.shown = performance.now(); observer.disconnect(); }
        });
        observer.observe(document.body, {childList: true, subtree: true, characterData: true, attributes: true});
    }"""

    # The websocket's traffic, timestamped, to split each interaction into the browser's part
    # (click → event sent), the server's (event sent → the delta with the new value
    # received) and rendering (that delta → element on screen).
    ws_script = """
        window.__ws = [];
        const NativeWebSocket = window.WebSocket;
        window.WebSocket = class extends NativeWebSocket {
            constructor(...args) {
                super(...args);
                this.addEventListener('message', (e) => window.__ws.push(['in', performance.now(), String(e.data)]));
            }
            send(data) { window.__ws.push(['out', performance.now(), '']); return super.send(data); }
        };
    """
    split = """([marker]) => {
        const b = window.__bench, ws = window.__ws || [];
        const sent = ws.find((e) => e[0] === 'out' && e[1] >= b.click);
        const got = ws.find((e) => e[0] === 'in' && e[1] >= b.click && e[2].includes(marker));
        return {browser: sent ? sent[1] - b.click : null, server: sent && got ? got[1] - sent[1] : null,
                render: got ? b.shown - got[1] : null};
    }"""

    def timed_click(page, button: str, target: str, marker: str) -> tuple[float, float, dict]:
        """(in-page ms from the click to the element on screen, driver ms from click() to visible, split)."""
        page.evaluate("window.__ws = []")
        page.evaluate(arm, [button, target])
        started = time.perf_counter()
        page.click(button)
        page.locator(target).wait_for(state="visible")
        page.wait_for_function("window.__bench.shown !== null")
        driver_ms = (time.perf_counter() - started) * 1000
        in_page = page.evaluate("window.__bench.shown - window.__bench.click")
        return in_page, driver_ms, page.evaluate(split, [marker])

    load_script = """
        window.__load = {};
        const NativeWebSocket = window.WebSocket;
        window.WebSocket = class extends NativeWebSocket {
            constructor(...args) {
                super(...args);
                this.addEventListener('message', () => {
                    if (window.__load.firstMessage === undefined) window.__load.firstMessage = performance.now();
                });
            }
        };
    """

    results: dict = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=UI_CHROMIUM, args=UI_CHROMIUM_ARGS)
        try:
            # 1. Get code: one page, the phone step over and over ("Use another number").
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(15_000)
            context.add_init_script(ws_script)
            page = context.new_page()
            page.goto(base_url + "/")
            change = page.get_by_role("button", name=translate("login.change_phone"))
            in_page, driver, splits = [], [], []
            for n in range(repetitions + 3):  # three warm-ups
                page.fill("#phone-input", f"+7{UI_PHONES + n}")
                shown, took, parts = timed_click(page, "#request-code-button", "#demo-code", "demo_code")
                if n >= 3:
                    in_page.append(shown)
                    driver.append(took)
                    splits.append(parts)
                change.click()
                page.locator("#phone-input").wait_for(state="visible")
            results["get_code"] = {"in_page": in_page, "driver": driver, "split": splits}
            context.close()
            log(f"UI Get code: median {statistics.median(in_page):.1f} ms, p95 {percentile(in_page, 95):.1f} ms")

            # 2. Activate: a fresh signed-in user each time (session cookie set directly),
            #    /profile?ref=CODE pre-fills the code; click "Activate", wait for the result.
            tokens = pools.signed_in_users(repetitions + 2)
            in_page, driver, splits = [], [], []
            for n, token in enumerate(tokens):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.set_default_timeout(15_000)
                context.add_init_script(ws_script)
                context.add_cookies([{"name": SESSION_COOKIE, "value": token, "domain": "127.0.0.1", "path": "/",
                                      "httpOnly": True, "sameSite": "Lax"}])
                page = context.new_page()
                page.goto(f"{base_url}/profile?ref={inviter_code}")
                page.wait_for_function(
                    "(code) => document.querySelector('#activate-input')?.value === code", arg=inviter_code
                )
                shown, took, parts = timed_click(page, "#activate-button", "#activated-code", "activated_code")
                if page.locator("#activated-code").inner_text() != inviter_code:
                    raise RuntimeError("the activated profile shows another code")
                if n >= 2:
                    in_page.append(shown)
                    driver.append(took)
                    splits.append(parts)
                context.close()
            results["activate"] = {"in_page": in_page, "driver": driver, "split": splits}
            log(f"UI Activate: median {statistics.median(in_page):.1f} ms, p95 {percentile(in_page, 95):.1f} ms")

            # 3. Cold first load of the sign-in page: a new context (empty cache) each time;
            #    bytes as transferred (CDP encodedDataLength: headers + compressed bodies).
            loads_data = []
            for _ in range(loads):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_init_script(load_script)
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                sizes: dict[str, float] = {}
                cdp.on("Network.loadingFinished", lambda e, sizes=sizes: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
                page.goto(base_url + "/", wait_until="load")
                page.locator("#phone-input").wait_for(state="visible")
                page.wait_for_function("window.__load.firstMessage !== undefined")
                page.wait_for_load_state("networkidle")
                timing = page.evaluate(
                    """() => { const n = performance.getEntriesByType('navigation')[0];
                       const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                       return {ttfb: n.responseStart, dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd,
                               fcp: fcp ? fcp.startTime : null, ws: window.__load.firstMessage}; }"""
                )
                timing["bytes"] = sum(sizes.values())
                timing["requests"] = len(sizes)
                loads_data.append(timing)
                context.close()
            results["first_load"] = loads_data
            log(f"UI first load: load event median {statistics.median(t['load'] for t in loads_data):.0f} ms, "
                f"{loads_data[0]['bytes'] / 1024:.0f} KiB in {loads_data[0]['requests']} requests")
        finally:
            browser.close()
    return results


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(pct) - 1]


# --------------------------------------------------------------------------- py-spy


def py_spy_path() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy") or "py-spy"


def py_spy_profile(wrk: Wrk, spec: WrkSpec, seconds: int, out_dir: Path) -> dict:
    """Record the server worker with py-spy while ``spec`` runs; summarise the samples.

    Two recordings of the same seconds, side by side (non-blocking: the worker is not paused):
    ``--gil`` samples only the thread holding the GIL, i.e. the Python work of this
    single-process server; ``--idle`` samples every thread, to see where the requests wait.
    """
    pid = wrk.server.worker_pid()
    holder: dict = {}
    paths = {view: out_dir / f"py-spy-{spec.scenario}-{view}.txt" for view in ("gil", "threads")}

    def record():
        time.sleep(1)  # let wrk ramp up
        procs = {
            view: subprocess.Popen(
                [py_spy_path(), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(PY_SPY_RATE),
                 "--nonblocking", "--format", "raw", "--output", str(paths[view]), flag],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            for view, flag in (("gil", "--gil"), ("threads", "--idle"))
        }
        for view, proc in procs.items():
            holder[view] = (proc.wait(), proc.stdout.read())

    results = wrk.run(spec, duration=seconds + 2, record=False, during=record)
    for view, path in paths.items():
        if holder.get(view, (1, ""))[0] != 0 or not path.exists():
            raise RuntimeError(f"py-spy ({view}) failed: {holder.get(view, (None, ''))[1][-2000:]}")
    summary = summarise_gil(paths["gil"].read_text(), seconds)
    summary["waits"] = summarise_threads(paths["threads"].read_text(), seconds)
    summary.update(result=results[0], pid=pid, paths=paths)
    return summary


PY_SPY_RATE = 200  # samples per second
# Frames above the request handling (process start, event loop, thread-pool loop): left out
# of the "functions" table, which would otherwise start with them at ~100%.
PLUMBING = ("click/", "multiprocessing/", "reflex/reflex.py", "reflex/utils/exec.py", "granian/server/",
            "asyncio/base_events.py", "asyncio/events.py", "threading.py", "concurrent/", "<module>",
            "anyio/_backends/_asyncio.py", "granian/_futures.py", "contextvars", "selectors.py", "queue.py")
COMPONENTS = {  # first part of a frame's file path → component
    "referral_app": "referral_app (routes, domain)",
    "sqlalchemy": "SQLAlchemy", "sqlmodel": "SQLModel", "psycopg2": "psycopg2",
    "fastapi": "FastAPI", "starlette": "Starlette", "pydantic": "pydantic", "pydantic_core": "pydantic",
    "anyio": "anyio (thread pool)", "threading.py": "threading / queue", "queue.py": "threading / queue",
    "concurrent": "threading / queue", "asyncio": "asyncio event loop", "selectors.py": "asyncio event loop",
    "granian": "Granian", "reflex": "Reflex", "reflex_base": "Reflex", "json": "json",
    "phonenumbers": "phonenumbers", "hmac.py": "hmac / hashlib", "hashlib.py": "hmac / hashlib",
    "secrets.py": "hmac / hashlib", "logging": "logging", "contextlib.py": "contextlib",
}
_FRAME = re.compile(r"(?P<func>[^;]*?) \((?P<file>[^;()]*?)(?::(?P<line>\d+))?\)")


def _stacks(raw_text: str):
    """(frames [(function, file)], count) per line of py-spy's raw (collapsed) output."""
    for line in raw_text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield [(m.group("func"), m.group("file")) for m in _FRAME.finditer(stack)], int(count)


def _component(file: str) -> str:
    head = file.split("/", 1)[0]
    return COMPONENTS.get(head, "other: " + head)


LAYERS = [  # (layer, test on one frame (function, file)); each sample goes to its innermost matching frame
    ("connection pool: checkout, pre-ping `SELECT 1`, return", lambda fn, file: file.startswith("sqlalchemy/pool/")
     or "do_ping" in fn or fn in ("Engine.raw_connection", "Connection._revalidate_connection")),
    ("transaction end: commit / rollback / close", lambda fn, file: file.startswith(("sqlalchemy/", "sqlmodel/"))
     and fn.split(".")[-1] in ("commit", "rollback", "close", "_close_impl", "_remove_snapshot")),
    ("SQLAlchemy + psycopg2: build, compile, execute, fetch, ORM rows",
     lambda fn, file: file.startswith(("sqlalchemy/", "sqlmodel/", "psycopg2/"))),
    ("pydantic: request/response validation and JSON", lambda fn, file: file.startswith("pydantic")),
    ("app's ASGI middleware (`api/middleware.py`, `logs.py`)",
     lambda fn, file: file.startswith(("referral_app/api/middleware.py", "referral_app/logs.py"))),
    ("app code: routes, dependencies, domain", lambda fn, file: file.startswith("referral_app/")),
    ("FastAPI: routing, dependency injection, serialization", lambda fn, file: file.startswith("fastapi/")),
    ("Starlette: middleware, routing, responses", lambda fn, file: file.startswith("starlette/")),
    ("Reflex ASGI wrapper", lambda fn, file: file.startswith("reflex")),
    ("thread-pool hand-off (anyio, threading, queue)",
     lambda fn, file: file.startswith(("anyio/", "threading.py", "queue.py", "concurrent/"))),
    ("event loop and Granian I/O", lambda fn, file: file.startswith(("asyncio/", "selectors.py", "granian/"))),
]


def summarise_gil(raw_text: str, seconds: int) -> dict:
    """Self time per component (innermost frame), inclusive time per component and per function."""
    total = 0
    leaf, comps, funcs, layers, self_funcs = Counter(), Counter(), Counter(), Counter(), Counter()
    for frames, n in _stacks(raw_text):
        if not frames:
            continue
        total += n
        leaf[_component(frames[-1][1])] += n
        self_funcs[f"{frames[-1][0]} ({frames[-1][1]})"] += n
        for fn, file in reversed(frames):
            layer = next((name for name, test in LAYERS if test(fn, file)), None)
            if layer:
                layers[layer] += n
                break
        else:
            layers["other: " + frames[-1][1].split("/", 1)[0]] += n
        for comp in {_component(file) for _, file in frames}:
            comps[comp] += n
        for func, file in set(frames):
            if not file.startswith(PLUMBING) and func != "<module>":
                funcs[(func, file)] += n
    total = total or 1
    return {
        "samples": total,
        "gil_busy": total / (PY_SPY_RATE * seconds),
        "self": [(name, n * 100 / total) for name, n in leaf.most_common()],
        "inclusive_components": [(name, n * 100 / total) for name, n in comps.most_common()],
        "top": [(f"{func} ({file})", n * 100 / total) for (func, file), n in funcs.most_common(24)],
        "layers": [(name, n * 100 / total) for name, n in layers.most_common()],
        "self_functions": [(name, n * 100 / total) for name, n in self_funcs.most_common(15)],
    }


WAIT_STATES = [  # (state, test on the stack's frames), first match wins
    ("waiting on a PostgreSQL advisory lock (`domain/locks.py`)", lambda f, leaf: any(
        fn == "lock" and file.startswith("referral_app/domain/locks.py") for fn, file in f)),
    ("waiting for a pooled connection (QueuePool checkout)", lambda f, leaf: any(fn == "QueuePool._do_get" for fn, _ in f)),
    ("opening a new PostgreSQL connection", lambda f, leaf: leaf[1].startswith("psycopg2/")),
    ("pool pre-ping round trip (`SELECT 1` at checkout)", lambda f, leaf: "do_ping" in leaf[0]),
    ("query or commit: waiting on PostgreSQL", lambda f, leaf: leaf[0].split(".")[-1] in (
        "do_execute", "do_executemany", "do_commit", "do_rollback", "do_execute_no_params")),
    ("thread-pool thread idle (no work)", lambda f, leaf: leaf[1] == "threading.py" and any(
        file == "queue.py" for _, file in f)),
    ("event loop waiting for I/O (select)", lambda f, leaf: leaf[1] == "selectors.py"),
]


def summarise_threads(raw_text: str, seconds: int) -> list[tuple[str, float]]:
    """Average number of worker threads in each state over the recording."""
    states = Counter()
    for frames, n in _stacks(raw_text):
        if not frames:
            continue
        for state, test in WAIT_STATES:
            if test(frames, frames[-1]):
                states[state] += n
                break
        else:
            states["running Python or waiting for the GIL"] += n
    return [(state, n / (PY_SPY_RATE * seconds)) for state, n in states.most_common()]


# --------------------------------------------------------------------------- chart


def draw_chart(results: list[WrkResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_lat, ax_rps) = plt.subplots(1, 2, figsize=(11, 5))
    xs = list(range(len(SIZES)))
    colors = {1: "tab:blue", 16: "tab:orange", 64: "tab:red"}
    for conns in CONNECTIONS:
        rows = {r.spec.label: r for r in results if r.spec.scenario == "profile" and r.spec.connections == conns}
        p50 = [rows[f"{size:,}"].p50_ms for size in SIZES]
        p99 = [rows[f"{size:,}"].p99_ms for size in SIZES]
        rps = [rows[f"{size:,}"].rps for size in SIZES]
        ax_lat.plot(xs, p50, "o-", color=colors[conns], label=f"p50, {conns} conn")
        ax_lat.plot(xs, p99, "s--", color=colors[conns], alpha=0.6, label=f"p99, {conns} conn")
        ax_rps.plot(xs, rps, "o-", color=colors[conns], label=f"{conns} conn")
    for ax in (ax_lat, ax_rps):
        ax.set_xticks(xs, [f"{size:,}" for size in SIZES])
        ax.set_xlabel("referrals of the user")
        ax.grid(True, alpha=0.3)
    ax_lat.axhline(TARGETS["profile_p99_ms"], color="gray", linestyle=":", linewidth=1)
    ax_lat.text(xs[-1], TARGETS["profile_p99_ms"] * 1.08, "target p99 at 16 conns", fontsize=7, color="gray",
                ha="right")
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("latency, ms (log scale)")
    ax_lat.set_title("GET /api/v1/profile/me/ latency")
    ax_lat.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax_rps.axhline(TARGETS["profile_rps"], color="gray", linestyle=":", linewidth=1)
    ax_rps.text(xs[-1], TARGETS["profile_rps"] * 0.95, "target at 16 conns", fontsize=7, color="gray", ha="right",
                va="top")
    ax_rps.set_ylim(0, TARGETS["profile_rps"] * 1.1)
    ax_rps.set_ylabel("requests/s")
    ax_rps.set_title("GET /api/v1/profile/me/ throughput")
    ax_rps.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    seconds = round(results[0].duration_s) if results else 0
    fig.suptitle(f"Profile cost against referral count (wrk, {seconds} s per point, one server worker)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- report


def table(results: list[WrkResult], first_column: str | None = None) -> str:
    head = (
        ("| " + first_column + " " if first_column else "")
        + "| conns | req/s | p50 ms | p99 ms | max ms | errors | non-2xx | server CPU | server CPU ms/req "
        "| postgres CPU | postgres CPU ms/req | new PG conns | wrk CPU | other CPU | worker RSS MiB |"
    )
    cols = head.count("|") - 1
    lines = [head, "|" + "---:|" * cols]
    for r in results:
        cells = ([r.spec.label] if first_column else []) + [
            str(r.spec.connections), f"{r.rps:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", f"{r.max_ms:.1f}",
            str(r.errors) + (" (timeouts)" if r.timeouts else ""),
            str(r.non2xx) + (f" ({r.reused} reused)" if r.reused else ""),
            f"{r.server_cpu:.2f}", f"{r.cpu_ms:.2f}", f"{r.postgres_cpu:.2f}", f"{r.pg_ms:.2f}",
            f"{r.new_connections:,}", f"{r.wrk_cpu:.2f}",
            f"{r.other_cpu:.2f}",
            f"{r.rss_worker_kb / 1024:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pick(results: list[WrkResult], scenario: str, conns: int, label: str | None = None) -> WrkResult | None:
    for r in results:
        if r.spec.scenario == scenario and r.spec.connections == conns and (label is None or r.spec.label == label):
            return r
    return None


def targets_table(results: list[WrkResult], ui: dict | None, rss_peak_kb: int, rss_peak_2w_kb: int = 0) -> str:
    """The targets; where the two-worker server ran the same scenario, its result is in a column of its own
    and the target is judged on the better of the two shapes (the mark says which one met it)."""
    rows = []
    two = any(r.spec.scenario.endswith(SUFFIX_2W) for r in results)

    def row(what: str, target: str, measured: str, ok: bool | None, ceiling: WrkResult | None = None,
            measured_2w: str | None = None, ok_2w: bool | None = None) -> None:
        if ok_2w is None:
            mark = "n/a" if ok is None else ("met" if ok else "**missed**")
        elif ok and ok_2w:
            mark = "met (both)"
        elif ok or ok_2w:
            mark = "met (one worker)" if ok else "met (two workers)"
        else:
            mark = "**missed**"
        limit = (f"{1000 / ceiling.cpu_ms:,.0f} req/s ({ceiling.cpu_ms:.2f} ms CPU/req)"
                 if ceiling is not None and ceiling.cpu_ms else "")
        rows.append(f"| {what} | {target} | {measured} |" + (f" {measured_2w or '–'} |" if two else "")
                    + f" {mark} | {limit} |")

    def profile_ok(r: WrkResult) -> bool:
        return r.rps >= TARGETS["profile_rps"] and r.p99_ms < TARGETS["profile_p99_ms"]

    for size in (0, SIZES[-1]):
        r = pick(results, "profile", 16, f"{size:,}")
        r2 = pick(results, "profile" + SUFFIX_2W, 16, f"{size:,}")
        if r:
            row(f"`profile/me`, {size:,} referrals, 16 conns", f"≥ {TARGETS['profile_rps']:,} req/s, "
                f"p99 < {TARGETS['profile_p99_ms']} ms", f"{r.rps:,.0f} req/s, p99 {r.p99_ms:.1f} ms", profile_ok(r), r,
                f"{r2.rps:,.0f} req/s, p99 {r2.p99_ms:.1f} ms" if r2 else None, profile_ok(r2) if r2 else None)
    low, high = pick(results, "profile", 16, "0"), pick(results, "profile", 16, f"{SIZES[-1]:,}")
    low2, high2 = (pick(results, "profile" + SUFFIX_2W, 16, "0"),
                   pick(results, "profile" + SUFFIX_2W, 16, f"{SIZES[-1]:,}"))
    if low and high:
        change = high.rps / low.rps - 1
        change2 = high2.rps / low2.rps - 1 if low2 and high2 and low2.rps else None
        row(f"`profile/me` at {SIZES[-1]:,} vs 0 referrals (16 conns)", "within 20%", f"{change:+.0%} req/s",
            abs(change) <= TARGETS["profile_flat"], None,
            f"{change2:+.0%} req/s" if change2 is not None else None,
            abs(change2) <= TARGETS["profile_flat"] if change2 is not None else None)
    for scenario, what, key in (("auth_code", "`auth_code` (valid codes)", "auth_rps"),
                                ("activate", "`activate_invite`", "activate_rps")):
        best = max((r for r in results if r.spec.scenario == scenario), key=lambda r: r.rps, default=None)
        best2 = max((r for r in results if r.spec.scenario == scenario + SUFFIX_2W), key=lambda r: r.rps,
                    default=None)
        at16 = pick(results, scenario, 16)
        at16_2 = pick(results, scenario + SUFFIX_2W, 16)
        if best:
            row(what, f"≥ {TARGETS[key]} req/s", f"{at16.rps:,.0f} req/s at 16 conns, best {best.rps:,.0f} "
                f"(at {best.spec.connections})", best.rps >= TARGETS[key], at16,
                f"{at16_2.rps:,.0f} req/s at 16 conns, best {best2.rps:,.0f} (at {best2.spec.connections})"
                if best2 and at16_2 else None, best2.rps >= TARGETS[key] if best2 else None)
    r = pick(results, "request_delay", 64)
    if r:
        row(f"`request_code`, SMS delay {DELAYED_SMS} s, 64 conns", f"≥ {TARGETS['delayed_rps']} req/s",
            f"{r.rps:,.1f} req/s (ceiling 64 / {DELAYED_SMS} s = {64 / float(DELAYED_SMS):.1f})",
            r.rps >= TARGETS["delayed_rps"])
    if ui:
        values = ui["get_code"]["in_page"]
        row("UI: Get code → code on screen, no SMS delay", f"p95 < {TARGETS['ui_code_p95_ms']} ms",
            f"p95 {percentile(values, 95):.1f} ms (median {statistics.median(values):.1f})",
            percentile(values, 95) < TARGETS["ui_code_p95_ms"])
    # Memory is a limit per worker in both shapes: the larger worker of the two-worker server counts too.
    rss_2w = (f"{rss_peak_2w_kb * 1024 / 1e6:.0f} MB ({rss_peak_2w_kb / 1024:.0f} MiB) peak of the larger worker"
              if rss_peak_2w_kb else "")
    row("one worker's RSS under load", f"< {TARGETS['rss_mb']} MB", f"{rss_peak_kb * 1024 / 1e6:.0f} MB "
        f"({rss_peak_kb / 1024:.0f} MiB) peak", max(rss_peak_kb, rss_peak_2w_kb) * 1024 / 1e6 < TARGETS["rss_mb"],
        measured_2w=rss_2w or None)
    if two:
        return ("| what | target | measured (one worker) | two workers with Redis | "
                "| one worker's ceiling (16 conns) |\n|---|---|---|---|---|---|\n" + "\n".join(rows))
    return ("| what | target | measured | | one worker's ceiling (16 conns) |\n|---|---|---|---|---|\n"
            + "\n".join(rows))


def split_table(ui: dict) -> str:
    """Medians of the three parts of each interaction, from the page's websocket timestamps."""
    lines = ["Where the time goes (medians, ms; from the page's websocket timestamps):", "",
             ("| interaction | click → event sent (browser) | event sent → delta received (server + network) "
              "| delta → on screen (render) |"), "|---|---:|---:|---:|"]
    for key, name in (("get_code", '"Get code"'), ("activate", '"Activate"')):
        parts = ui[key].get("split") or []

        def med(part: str, parts: list[dict] = parts) -> str:
            values = [p[part] for p in parts if p.get(part) is not None]
            return f"{statistics.median(values):.1f}" if values else "–"

        lines.append(f"| {name} | {med('browser')} | {med('server')} | {med('render')} |")
    return "\n".join(lines)


def ui_section(ui: dict | None, repetitions: int) -> str:
    if not ui:
        return "Skipped (`--skip-ui`)."

    def stats(values: list[float]) -> str:
        return (f"{statistics.median(values):.1f} | {percentile(values, 95):.1f} | {min(values):.1f} | "
                f"{max(values):.1f}")

    loads = ui["first_load"]

    def med(key: str) -> str:
        values = [t[key] for t in loads if t.get(key) is not None]
        return f"{statistics.median(values):.0f}" if values else "–"

    return f"""{ui.get('chromium', 'Chromium')} (headless, Playwright), on the same machine as the server.
Times are taken in the page: from the click event's timestamp to the first DOM change after which
the target element is rendered with its text (a `MutationObserver`); the "driver" rows are the
same interactions timed from the test process (`click()` until Playwright sees the element), which
adds the driver's round trips. {repetitions} measured repetitions each, after warm-ups.

| interaction | n | median ms | p95 ms | min ms | max ms |
|---|---:|---:|---:|---:|---:|
| "Get code" → `#demo-code` shown (`SMS_DELAY_SECONDS=0`) | {len(ui['get_code']['in_page'])} | {stats(ui['get_code']['in_page'])} |
| same, driver's view | {len(ui['get_code']['driver'])} | {stats(ui['get_code']['driver'])} |
| "Activate" → `#activated-code` shown (a new user each time) | {len(ui['activate']['in_page'])} | {stats(ui['activate']['in_page'])} |
| same, driver's view | {len(ui['activate']['driver'])} | {stats(ui['activate']['driver'])} |

{split_table(ui)}

"Get code" runs on one page (then "Use another number" for the next phone); each "Activate" is a
fresh browser context with a pre-created session cookie, opening `/profile?ref=<code>`.

First load of the sign-in page `/`, {len(loads)} cold loads (new browser context, empty cache), medians:

| time to first byte ms | DOMContentLoaded ms | load event ms | first contentful paint ms | first websocket message (state hydrated) ms | transferred | requests |
|---:|---:|---:|---:|---:|---:|---:|
| {med('ttfb')} | {med('dcl')} | {med('load')} | {med('fcp')} | {med('ws')} | {statistics.median(t['bytes'] for t in loads) / 1024:,.0f} KiB ({statistics.median(t['bytes'] for t in loads):,.0f} bytes) | {statistics.median(t['requests'] for t in loads):.0f} |

"Transferred" is the sum of CDP `encodedDataLength` (headers plus bodies as sent, compressed
where the server compresses) of every HTTP request until the network is idle; the websocket's
frames are not included."""


def profiles_section(profiles: list[dict]) -> str:
    if not profiles:
        return "Skipped (`--skip-profile`)."
    parts = []
    for prof in profiles:
        r: WrkResult = prof["result"]
        layers = "\n".join(f"| {name} | {pct:.1f} |" for name, pct in prof["layers"])
        comps = "\n".join(f"| {name} | {pct:.1f} |" for name, pct in prof["self"][:10])
        hot = "\n".join(f"| `{name}` | {pct:.1f} |" for name, pct in prof["self_functions"])
        waits = "\n".join(f"| {state} | {threads:.2f} |" for state, threads in prof["waits"])
        parts.append(
            f"""### {prof['title']}

{prof.get('version', 'py-spy')} on the worker (pid {prof['pid']}) at {PY_SPY_RATE} Hz for {prof['seconds']} s, during a
{prof['seconds'] + 2} s wrk run at {r.spec.connections} connections ({r.rps:,.0f} req/s, p50 {r.p50_ms:.1f} ms, p99
{r.p99_ms:.1f} ms; server {r.server_cpu:.2f} cores = {r.cpu_ms:.2f} ms CPU per request, PostgreSQL {r.postgres_cpu:.2f},
other work on the machine {r.other_cpu:.2f}), recorded twice at once: `--gil` (only the thread holding the
GIL) and `--idle` (every thread). The GIL was held in {prof['gil_busy']:.0%} of the sampling instants.

Where the GIL time goes, each sample counted once, at its innermost frame that belongs to one of these
layers:

| layer (GIL held) | % |
|---|---:|
{layers}

By the package of the innermost frame:

| package (self, GIL held) | % |
|---|---:|
{comps}

The hottest functions (self time, GIL held):

| function (file) | % |
|---|---:|
{hot}

Where the worker's threads were (every thread, average number over the recording; GIL waits show up as
"running Python or waiting for the GIL"):

| state | threads |
|---|---:|
{waits}
"""
        )
    return "\n".join(parts)


def stalls_section(stalls: list[dict]) -> str:
    if not stalls:
        return "None: after every run the server answered a profile read within 5 s."
    lines = [
        ("After these runs the server did not answer a profile read within 5 s. The bench took a `py-spy dump` "
         "of the worker and counted the app's connections in `pg_stat_activity` right then, then waited up to "
         f"{RECOVERY_WAIT} s for it to recover and restarted it otherwise (the next run starts on a working server)."),
        "",
        "| after | worker threads (py-spy dump) | app's PostgreSQL connections | outcome |",
        "|---|---|---|---|",
    ]
    for stall in stalls:
        threads = "; ".join(f"{n} {what}" for what, n in stall["threads"].most_common()) or "?"
        conns = "; ".join(f"{n} {state}" for state, n in stall["connections"].items()) or "none"
        outcome = (f"answered again after {stall['recovered_s']:.0f} s" if "recovered_s" in stall
                   else f"restarted ({stall.get('restarted_s', 0):.0f} s lost)")
        lines.append(f"| {stall['after']} | {threads} | {conns} | {outcome} |")
    return "\n".join(lines)


def two_workers_section(ctx: dict, two: list[WrkResult]) -> str:
    if not two:
        return ("Skipped (`--skip-redis`)." if ctx.get("skip_redis")
                else "Not run (the benchmark stopped before it).")

    def by(scenario: str) -> list[WrkResult]:
        return [r for r in two if r.spec.scenario == scenario + SUFFIX_2W]

    profile_rows = sorted(by("profile"), key=lambda r: (r.spec.connections, int(r.spec.label.replace(",", ""))))
    workers = ctx.get("workers_2w", [])
    return f"""The same database and owners; the server restarted once more with
`REFLEX_REDIS_URL={REDIS_URL}` (database 15 of {ctx.get('redis_version', 'Redis')} on 127.0.0.1:6379,
flushed before the start and after the stop) and `WORKERS={TWO_WORKERS}`, as in production: `scripts/run.sh`
then sets `GRANIAN_WORKERS={TWO_WORKERS}`, and Reflex forks {len(workers)} Granian worker processes (pids
{", ".join(map(str, workers)) or "?"}) from its supervisor, which imported the app first. Reflex keeps its state
in Redis; these API requests do not use it, but an activation publishes its live update through Redis pub/sub.
Everything else as above (`SMS_DELAY_SECONDS=0`, the send limits off), after a 3 s warm-up, at
{" and ".join(map(str, CONNECTIONS_2W))} connections. "server CPU" is the whole process group (the supervisor
and both workers; at most {ctx['env']['nproc']} cores on this machine, shared with PostgreSQL and wrk), so "server
CPU ms/req" compares with the one-worker tables directly; Redis's own CPU is in "other CPU". "worker RSS" is the
peak of the larger worker.

### `GET /api/v1/profile/me/`

The profile plus its first page of {PAGE_SIZE} referrals, for the owners with 0 and {SIZES[-1]:,} referrals.

{table(profile_rows, 'referrals')}

### `POST /api/v1/auth/auth_code/` with valid codes

A fresh pool of codes for each run, as above.

{table(by('auth_code'))}

### `POST /api/v1/profile/activate_invite/`

A fresh pool of signed-in users for each run, all entering the code of the same inviter as above.

{table(by('activate'))}"""


def render(ctx: dict) -> str:
    env, results, ui = ctx["env"], ctx["results"], ctx["ui"]
    def by(scenario: str) -> list[WrkResult]:
        return [r for r in results if r.spec.scenario == scenario]

    def by_size(rows: list[WrkResult]) -> list[WrkResult]:
        return sorted(rows, key=lambda r: (r.spec.connections, int(r.spec.label.replace(",", ""))))

    profile_rows = by_size(by("profile"))
    one = [r for r in results if not r.spec.scenario.endswith(SUFFIX_2W)]
    two = [r for r in results if r.spec.scenario.endswith(SUFFIX_2W)]
    rss_peak = max((r.rss_worker_kb for r in one), default=0)
    rss_peak_2w = max((r.rss_worker_kb for r in two), default=0)
    hwm = "\n".join(
        f"| {label} | {pid} | {role} | `{cmd.split(' --frontend-port')[0].split('/.venv/bin/')[-1]}` "
        f"| {kb / 1024:.0f} |"
        for label, processes in ctx["hwm"] for pid, role, cmd, kb in sorted(processes, key=lambda p: -p[3])
    )
    concurrent = ctx.get("concurrent")
    concurrent_text = ""
    if concurrent:
        alone, during, delayed = concurrent
        concurrent_text = f"""
While the 64 connections of the delayed run each waited on a simulated SMS, a second wrk read
`GET /api/v1/profile/me/` (0 referrals) over 1 connection: p50 {during.p50_ms:.2f} ms, p99 {during.p99_ms:.2f} ms,
{during.rps:,.0f} req/s, {during.non2xx} non-2xx, against p50 {alone.p50_ms:.2f} ms, p99 {alone.p99_ms:.2f} ms alone
(1 connection, no other load). The waiting requests hold no thread and no database connection: the
delay is an `asyncio.sleep` after the code is committed.

| client | conns | req/s | p50 ms | p99 ms | max ms | errors | non-2xx |
|---|---:|---:|---:|---:|---:|---:|---:|
| `request_code`, delay {DELAYED_SMS} s | {delayed.spec.connections} | {delayed.rps:,.1f} | {delayed.p50_ms:.1f} | {delayed.p99_ms:.1f} | {delayed.max_ms:.1f} | {delayed.errors} | {delayed.non2xx} |
| `profile/me` at the same time | {during.spec.connections} | {during.rps:,.0f} | {during.p50_ms:.2f} | {during.p99_ms:.2f} | {during.max_ms:.1f} | {during.errors} | {during.non2xx} |
"""
    checks = "\n".join(f"- {line}" for line in ctx["checks"])
    starts = (f", {ctx['restart_s']:.0f} s (restart) and {ctx['restart_2w_s']:.0f} s (two workers with Redis)"
              if ctx.get("restart_2w_s") else f" and {ctx['restart_s']:.0f} s (restart)")
    rss_2w_text = (f" with one worker, {rss_peak_2w / 1024:.0f} MiB (the larger of the two) with two workers and Redis"
                   if two else "")
    targets_intro = ("""
The two-worker column is the server of the last section (Redis, `WORKERS=2`) in the same scenario; a
target counts as met when either shape meets it, and the mark says which one did. The memory limit holds
for every worker of both shapes.
""" if two else "")
    deep = by("deep_page")
    deep_label = deep[0].spec.label if deep else ""
    return f"""# Benchmarks

Generated by `make bench` (`bench/run.py`, see `bench/README.md`); rerun it to refresh this page
and `profile-latency.png`.

- Date: {env['date']}
- Machine: `nproc` = {env['nproc']}, {env['cpu']}; load average when the run started: {env['loadavg']}
  (other work on the machine, if any, is in these numbers)
- Database: {ctx['pg_version']} on 127.0.0.1:5432, a fresh database of its own (dropped at the end);
  `VACUUM ANALYZE` after each bulk seeding
- App: commit `{env['commit']}` (plus uncommitted changes, if any), started with `scripts/run.sh`
  (`reflex run --env prod --single-port`: the production frontend build, the API and the websocket on
  one port; Granian with one worker process, as Reflex runs without Redis; the last section restarts it
  with Redis and two workers, the production shape)
- Settings: **`RATE_LIMITS_ENABLED=false` — the send limits are switched off for the whole run**
  (all requests come from 127.0.0.1); `SMS_DELAY_SECONDS=0` for every scenario except
  "request_code with the SMS delay", which runs on a restarted server with `SMS_DELAY_SECONDS={DELAYED_SMS}`;
  `DEMO_MODE=true` (the code is in the answer); `SECRET_KEY` set by the bench (it hashes the seeded
  codes with the same key); everything else at its default (the database pool size is in `referral_app/db.py`)
- Load generator: {ctx['wrk_version']}, a separate process on the same {env['nproc']} cores (its CPU use is in the
  tables), `-t1` for 1 connection and `-t2` otherwise, {ctx['duration']} s per run, keep-alive, `--timeout {WRK_TIMEOUT}`,
  Lua scripts in `bench/wrk/`. Latency percentiles are wrk's (not corrected for coordinated omission).
- Seeding: {ctx['seeded']:,} referral rows in {ctx['seed_s']:.1f} s; server start {ctx['start_s']:.0f} s (first){starts};
  whole run {ctx['total_s'] / 60:.1f} min

Columns: "errors" are socket errors and timeouts, "non-2xx" answers with another status; "server CPU"
is the CPU time of the server's process group per second of the run (1.00 = one core busy), "postgres
CPU" the same for the PostgreSQL processes alive at the start and the end of the run (a connection
opened and closed within the run is missed: see "new PG conns"), "wrk CPU" for the load generator, "other CPU" the rest of
the machine's busy time (other people's work on this shared machine, the bench's own sampling): the
machine has {env['nproc']} cores in all, so a run with much "other CPU" had less left. "ms/req" divides
CPU time by answered requests: unlike req/s it hardly depends on how much of the machine the server got,
and 1000 / (server CPU ms/req) is the most one Python worker process (one GIL) can serve with a whole
core to itself. "new PG conns" counts the connections the app opened to PostgreSQL during the run
(`sessions` in `pg_stat_database`; the app's pool keeps some connections open and opens more under load, closing each extra
one when it is returned). "worker RSS" the peak
`VmRSS` of the largest worker process (the supervisor, which serves no request, left out), sampled every 100 ms
during the run.

## Against the targets
{targets_intro}
{targets_table(results, ui, rss_peak, rss_peak_2w)}

## `GET /api/v1/profile/me/` by referral count

The profile plus its first page of {PAGE_SIZE} referrals, with one user's token.

{table(profile_rows, 'referrals')}

![Profile latency and throughput against referral count](profile-latency.png)

## `GET /api/v1/profile/me/referrals/?limit={PAGE_SIZE}&cursor=…` deep in the list

{deep_label}: the cursor of the last page of a walk through the whole list with `limit=100`.

{table(deep)}

## `POST /api/v1/auth/auth_code/` with valid codes

Every request signs in a new phone with its own live code (seeded in bulk before each run: the
domain's `generate_code` and `hash_code` with the server's key, stored as `issue_code` stores
them), so each success creates a user and a session.

{table(by('auth_code'))}

## `POST /api/v1/auth/request_code/`, `SMS_DELAY_SECONDS=0`

Every request a phone number of its own.

{table(by('request_code'))}

## `POST /api/v1/auth/request_code/`, `SMS_DELAY_SECONDS={DELAYED_SMS}`

The same on a server restarted with the simulated SMS delay. Each request waits {DELAYED_SMS} s, so
n connections cannot exceed n / {DELAYED_SMS} req/s.

{table(by('request_delay'))}
{concurrent_text}
## `POST /api/v1/profile/activate_invite/`

Every request is a different user (created with a session token before the run) entering the code
of one inviter.

{table(by('activate'))}

## Two workers with Redis (the production shape)

{two_workers_section(ctx, two)}

## UI (Chromium)

{ui_section(ui, ctx['ui_repetitions'])}

## Stalls

{stalls_section(ctx['stalls'])}

## Memory

Peak RSS (`VmHWM` from `/proc/<pid>/status`) of each process in the server's process group, read
before each server was stopped (whole lifetime: start, seeding, every run):

| server | pid | role | command | peak RSS MiB |
|---|---:|---|---|---:|
{hwm}

The largest `VmRSS` of a worker sampled during any run: {rss_peak / 1024:.0f} MiB{rss_2w_text}.

## Profile of the slowest paths (py-spy)

{profiles_section(ctx['profiles'])}

## Checks

{checks}
"""


# --------------------------------------------------------------------------- main


def two_workers(ctx: dict, wrk: Wrk, pools: Pools, engine: Engine, database_url: str, server_log: Path,
                redis_client, owners: list[Owner], inviter: Owner) -> None:
    """The production shape: Redis and two workers; profile/me, auth_code and activate_invite at 16 and 64 conns.

    Redis database 15 (``REDIS_URL``) is flushed before the start and after the stop, also on failure.
    """
    pool_size = wrk.duration * ctx["pool_rate"]
    checks = ctx["checks"]

    def bearer(owner: Owner) -> dict[str, str]:
        return {"Authorization": f"Bearer {owner.token}"}

    def invited_count() -> int:
        with engine.connect() as conn:
            return conn.execute(text("SELECT invited_count FROM users WHERE phone_number = :p"),
                                {"p": INVITER_PHONE}).scalar_one()

    redis_client.flushdb()
    log(f"flushed Redis {REDIS_URL}")
    try:
        env = {"REFLEX_REDIS_URL": REDIS_URL, "WORKERS": str(TWO_WORKERS)}
        with harness.running_server(database_url, server_log, env) as server:
            ctx["restart_2w_s"] = server.start_seconds
            wrk.server = server
            workers = server.worker_pids()
            ctx["workers_2w"] = workers
            log(f"worker processes: {workers}")
            checks.append(f"two workers with Redis: {len(workers)} worker processes in the server's group"
                          + ("" if len(workers) == TWO_WORKERS else f", **wanted {TWO_WORKERS}**"))
            wrk.run(WrkSpec("warm-up", "0", "/api/v1/profile/me/", 16, "get", headers=bearer(owners[0])),
                    duration=3, record=False)
            for conns in CONNECTIONS_2W:
                for owner in (owners[0], owners[-1]):
                    wrk.run(WrkSpec("profile" + SUFFIX_2W, f"{owner.size:,}", "/api/v1/profile/me/", conns, "get",
                                    headers=bearer(owner)))
            for conns in CONNECTIONS_2W:
                pool = pools.confirmation_codes(pool_size)
                wrk.run(WrkSpec("auth_code" + SUFFIX_2W, "valid codes", "/api/v1/auth/auth_code/", conns, "pool",
                                args=[str(pool), "{threads}", "body"], pool=pool_size))
            before, activations = invited_count(), 0
            for conns in CONNECTIONS_2W:
                pool = pools.activators(pool_size)
                result = wrk.run(WrkSpec("activate" + SUFFIX_2W, "one inviter", "/api/v1/profile/activate_invite/",
                                         conns, "pool", args=[str(pool), "{threads}", "token",
                                                              json.dumps({"invite_code": inviter.invite_code})],
                                         pool=pool_size))[0]
                activations += result.requests - result.non2xx
            checks.append(f"two workers with Redis: wrk counted {activations:,} successful activations; the "
                          f"inviter's `invited_count` grew by {invited_count() - before:,} (as above, requests in "
                          f"flight when a run stopped may complete after wrk stops counting)")
            ctx["hwm"] += wrk.hwm
            wrk.hwm = []
            ctx["hwm"].append(("two workers, Redis", with_roles(server.processes())))
    finally:
        try:
            redis_client.flushdb()
            log(f"flushed Redis {REDIS_URL}")
        except Exception as error:  # noqa: BLE001 - do not hide the run's own failure
            log(f"could not flush Redis {REDIS_URL}: {error}")



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    parser.add_argument("--ui-repetitions", type=int, default=50, help="UI clicks measured per interaction (50)")
    parser.add_argument("--ui-loads", type=int, default=10, help="cold first loads of the sign-in page (10)")
    parser.add_argument("--pool-rate", type=int, default=1500,
                        help="single-use items seeded per second of a run, per run (1500)")
    parser.add_argument("--skip-ui", action="store_true", help="no browser measurements")
    parser.add_argument("--skip-profile", action="store_true", help="no py-spy runs")
    parser.add_argument("--skip-redis", action="store_true",
                        help=f"no two-worker run with Redis ({REDIS_URL}, flushed before and after)")
    parser.add_argument("--no-doc", action="store_true", help="print only; do not write docs/")
    args = parser.parse_args()
    if not 1 <= args.duration <= 120 or not 1 <= args.ui_repetitions <= 500 or not 1 <= args.ui_loads <= 50:
        parser.error("need 1 <= --duration <= 120, 1 <= --ui-repetitions <= 500, 1 <= --ui-loads <= 50")
    if not 100 <= args.pool_rate <= 20_000:
        parser.error("need 100 <= --pool-rate <= 20000")
    harness.sigterm_as_interrupt()
    run_started = time.monotonic()
    ensure_wrk()
    env = harness.environment()
    workdir = Path(tempfile.mkdtemp(prefix="referral-bench-"))
    log(f"work files (wrk output, pools, py-spy samples, server log) in {workdir}")
    pool_size = args.duration * args.pool_rate
    checks: list[str] = []
    ctx: dict = {"env": env, "duration": args.duration, "ui": None, "profiles": [], "hwm": [], "checks": checks,
                 "ui_repetitions": args.ui_repetitions, "wrk_version": tool_version("wrk", "--version"),
                 "skip_redis": args.skip_redis, "pool_rate": args.pool_rate}
    redis_client = None
    if not args.skip_redis:  # fail now rather than after the one-worker runs
        import redis

        redis_client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
        try:
            ctx["redis_version"] = "Redis " + redis_client.info("server")["redis_version"]
        except redis.RedisError as error:
            raise SystemExit(f"Redis at {REDIS_URL} does not answer ({error}); start it or pass --skip-redis") from None

    with harness.throwaway_database() as (_, database_url):
        engine = create_engine(database_url)
        server_log = workdir / "server.log"
        with harness.running_server(database_url, server_log) as server:
            ctx["start_s"] = server.start_seconds
            ctx["pg_version"] = harness.pg_version(engine)
            owners = harness.make_owners(list(SIZES))
            ctx["seed_s"] = harness.seed(engine, owners)
            ctx["seeded"] = sum(SIZES)
            log(f"seeded {sum(SIZES):,} referrals in {ctx['seed_s']:.1f} s")
            pools = Pools(engine, workdir)
            # 3 activation runs, one more for py-spy, 2 with two workers, the browser's activations (+2 warm-ups).
            started = time.perf_counter()
            pools.prepare_signed_in_users((4 + len(CONNECTIONS_2W)) * pool_size + args.ui_repetitions + 2)
            log(f"created {len(pools.tokens):,} signed-in users for the activations in "
                f"{time.perf_counter() - started:.1f} s")
            inviter = Owner(0, INVITER_PHONE, "")
            with httpx.Client(base_url=server.url, timeout=30) as client:
                for owner in owners + [inviter]:
                    owner.token = harness.sign_in(client, owner.phone)
                    if owner.size:
                        harness.find_deep_cursor(client, owner)
                    me = client.get("/api/v1/profile/me/", headers={"Authorization": f"Bearer {owner.token}"})
                    me.raise_for_status()
                    if me.json()["invited_count"] != owner.size:
                        raise RuntimeError(f"{owner.phone}: invited_count {me.json()['invited_count']}")
                    owner.invite_code = me.json()["invite_code"]
            checks.append("every owner signed in through the API; each profile's `invited_count` equals the seeded "
                          "count; walking each list with `limit=100` returned every referral exactly once")
            wrk = Wrk(server, workdir, args.duration, engine)
            wrk.probe_headers = {"Authorization": f"Bearer {owners[0].token}"}

            def bearer(owner: Owner) -> dict[str, str]:
                return {"Authorization": f"Bearer {owner.token}"}

            # Warm-up (not reported): the first requests of a fresh worker are slower.
            wrk.run(WrkSpec("warm-up", "0", "/api/v1/profile/me/", 16, "get", headers=bearer(owners[0])),
                    duration=3, record=False)
            for conns in CONNECTIONS:
                for owner in owners:
                    wrk.run(WrkSpec("profile", f"{owner.size:,}", "/api/v1/profile/me/", conns, "get",
                                    headers=bearer(owner)))
            deepest = owners[-1]
            for conns in CONNECTIONS:
                wrk.run(WrkSpec("deep_page", f"{deepest.size:,} referrals, page after #{deepest.deep_position:,}",
                                f"/api/v1/profile/me/referrals/?limit={PAGE_SIZE}&cursor={deepest.deep_cursor}",
                                conns, "get", headers=bearer(deepest)))
            for conns in CONNECTIONS:
                pool = pools.confirmation_codes(pool_size)
                wrk.run(WrkSpec("auth_code", "valid codes", "/api/v1/auth/auth_code/", conns, "pool",
                                args=[str(pool), "{threads}", "body"], pool=pool_size))
            for conns in CONNECTIONS:
                wrk.run(WrkSpec("request_code", "delay 0", "/api/v1/auth/request_code/", conns, "phones",
                                args=[str(pools.request_block()), "500000"]))
            activations = 0
            for conns in CONNECTIONS:
                pool = pools.activators(pool_size)
                result = wrk.run(WrkSpec("activate", "one inviter", "/api/v1/profile/activate_invite/", conns, "pool",
                                         args=[str(pool), "{threads}", "token",
                                               json.dumps({"invite_code": inviter.invite_code})], pool=pool_size))[0]
                activations += result.requests - result.non2xx
            with engine.connect() as conn:
                counted = conn.execute(text("SELECT invited_count FROM users WHERE phone_number = :p"),
                                       {"p": INVITER_PHONE}).scalar_one()
            checks.append(f"activations: wrk counted {activations:,} successful answers; the inviter's "
                          f"`invited_count` is {counted:,} (requests still in flight when a run stopped may "
                          f"complete on the server after wrk stops counting)")
            ui_start = pools.next_activator
            if not args.skip_ui:
                ui = ui_measurements(server.url, pools, inviter.invite_code, args.ui_repetitions, args.ui_loads)
                ui["chromium"] = tool_version(UI_CHROMIUM, "--version")
                ctx["ui"] = ui
                with engine.connect() as conn:
                    activated = conn.execute(
                        text("SELECT count(*) FROM users u JOIN users o ON u.invited_by_id = o.id "
                             "WHERE o.phone_number = :p AND u.phone_number >= :first"),
                        {"p": INVITER_PHONE, "first": f"+7{ACTIVATOR_PHONES + ui_start}"},
                    ).scalar_one()
                checks.append(f"UI: every activation showed the inviter's code; {activated} browser users are "
                              f"now the inviter's referrals (warm-ups included)")

            if not args.skip_profile:
                candidates = [r for r in wrk.results if r.spec.connections == 16
                              and r.spec.scenario in ("auth_code", "request_code", "activate", "deep_page")]
                slowest = min(candidates, key=lambda r: r.rps)
                log(f"py-spy: slowest path at 16 conns is {slowest.spec.scenario} ({slowest.rps:,.0f} req/s)")
                specs = []
                spec = slowest.spec
                if spec.scenario == "auth_code":
                    spec = WrkSpec(spec.scenario, spec.label, spec.path, 16, "pool",
                                   args=[str(pools.confirmation_codes(pool_size)), "{threads}", "body"], pool=pool_size)
                elif spec.scenario == "activate":
                    spec = WrkSpec(spec.scenario, spec.label, spec.path, 16, "pool",
                                   args=[str(pools.activators(pool_size)), "{threads}", "token",
                                         json.dumps({"invite_code": inviter.invite_code})], pool=pool_size)
                elif spec.scenario == "request_code":
                    spec = WrkSpec(spec.scenario, spec.label, spec.path, 16, "phones",
                                   args=[str(pools.request_block()), "500000"])
                specs.append((f"`{spec.scenario}` (the slowest path), 16 connections", spec))
                specs.append((f"`GET /api/v1/profile/me/` ({SIZES[-1]:,} referrals), 16 connections",
                              WrkSpec("profile", f"{SIZES[-1]:,}", "/api/v1/profile/me/", 16, "get",
                                      headers=bearer(owners[-1]))))
                seconds = max(5, args.duration)
                for title, spec in specs:
                    prof = py_spy_profile(wrk, spec, seconds, workdir)
                    prof.update(title=title, seconds=seconds,
                                version=tool_version(py_spy_path(), "--version"))
                    ctx["profiles"].append(prof)
                    log(f"py-spy {spec.scenario}: GIL held {prof['gil_busy']:.0%}; "
                        + ", ".join(f"{name} {pct:.0f}%" for name, pct in prof["layers"][:6]))
                    log("  threads: " + ", ".join(f"{state} {n:.2f}" for state, n in prof["waits"]))
            ctx["hwm"] += wrk.hwm
            wrk.hwm = []
            ctx["hwm"].append(("SMS delay 0", with_roles(server.processes())))
            profile_alone = pick(wrk.results, "profile", 1, "0")

        with harness.running_server(database_url, server_log, {"SMS_DELAY_SECONDS": DELAYED_SMS}) as server:
            ctx["restart_s"] = server.start_seconds
            wrk.server = server
            for conns in CONNECTIONS:
                spec = WrkSpec("request_delay", f"delay {DELAYED_SMS} s", "/api/v1/auth/request_code/", conns,
                               "phones", args=[str(pools.request_block()), "500000"])
                if conns == CONNECTIONS[-1]:
                    reader = WrkSpec("profile_during_delay", "0", "/api/v1/profile/me/", 1, "get",
                                     headers=bearer(owners[0]))
                    delayed, during = wrk.run(spec, reader)
                    wrk.results.remove(during)
                    ctx["concurrent"] = (profile_alone, during, delayed)
                else:
                    wrk.run(spec)
            ctx["hwm"] += wrk.hwm
            wrk.hwm = []
            ctx["hwm"].append((f"SMS delay {DELAYED_SMS} s", with_roles(server.processes())))

        if redis_client is not None:
            two_workers(ctx, wrk, pools, engine, database_url, server_log, redis_client, owners, inviter)
        engine.dispose()

    ctx["results"] = wrk.results
    ctx["stalls"] = wrk.stalls
    bad = [r for r in wrk.results if r.errors or r.non2xx or r.reused]
    checks.append("every run: no socket errors, no timeouts, no non-2xx answers, no single-use item used twice"
                  if not bad else "runs with errors, non-2xx answers or reused items: "
                  + "; ".join(f"{r.spec.scenario} c={r.spec.connections}: errors {r.errors}, non-2xx {r.non2xx}, "
                              f"reused {r.reused}, first bad answer `{r.sample[:100]}`" for r in bad))
    ctx["total_s"] = time.monotonic() - run_started
    report = render(ctx)
    print()
    print(report)
    if not args.no_doc:
        DOC_PATH.parent.mkdir(exist_ok=True)
        DOC_PATH.write_text(report)
        draw_chart(wrk.results, CHART_PATH)
        log(f"wrote {DOC_PATH.relative_to(ROOT)} and {CHART_PATH.relative_to(ROOT)}")
    log(f"whole run {time.monotonic() - run_started:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; server stopped and database dropped", file=sys.stderr)
        sys.exit(130)
