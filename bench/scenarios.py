"""The wrk runs: what a run is (``WrkSpec``), what it measured (``WrkResult``), running it while
sampling the server (``Wrk``), the single-use data each write run needs (``Pools``), and the
interleaved comparison with the floor (``versus_floor``)."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, text
from sqlalchemy.engine import Engine

from bench import harness
from bench.harness import (
    Server, cpu_delta, log, machine_busy_seconds, postgres_pids, py_spy_path, total_cpu, utcnow, with_roles,
)

WRK_DIR = Path(__file__).resolve().parent / "wrk"
CONNECTIONS = (1, 16, 64)
SIZES = (0, 1_000, 10_000, 100_000)
PAGE_SIZE = 20
DELAYED_SMS = "1.5"  # SMS_DELAY_SECONDS of the delayed request_code scenario
REDIS_URL = "redis://127.0.0.1:6379/15"  # the two-worker server's REFLEX_REDIS_URL; db 15 is flushed before and after
TWO_WORKERS = 2  # WORKERS of the app against the floor (scripts/run.sh: GRANIAN_WORKERS), and the floor's
FLOOR_CONNECTIONS = 16
SUFFIX_2W = "_2w"  # scenario names of the app's two-worker runs
FLOOR = "floor_"  # prefix of the floor's scenario names
WRK_TIMEOUT = "10s"  # a request slower than this counts as a timeout error
RECOVERY_WAIT = 45  # seconds a stalled server gets to answer again before it is restarted

# Phone number blocks (the 10 digits after +7), apart from the seeded referrals
# (+7900...) and owners (+7912...): every request of a run has a number of its own.
AUTH_PHONES = 9_210_000_000  # auth_code pools
ACTIVATOR_PHONES = 9_220_000_000  # users that activate a code (API and UI)
UI_PHONES = 9_230_000_000  # "Get code" in the browser
INVITERS_PHONES = 9_240_000_000  # inviters of the activations with distinct inviters
REQUEST_PHONES = 9_150_000_000  # request_code runs: 1,000,000 numbers per run
INVITER_PHONE = "+79120009999"
ACTIVATOR_CODE_BASE = 1 << 28  # invite codes of seeded activators; referrals use 1..111,000, owners 1<<29+i
INVITERS_CODE_BASE = 1 << 27  # invite codes of the distinct inviters


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
        self.next_inviter = 0
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

    def activators_with_inviters(self, count: int) -> Path:
        """``count`` prepared users, each with an inviter of its own: lines ``<token> <invite code>``.

        The inviters are new users (no session; nobody else enters their codes), so no two
        activations of the run wait for the same referral tree's lock. By now the app has given
        random codes to the users that signed in through it, and one may equal a code chosen
        here: such an inviter is left out (a few spare ones are made).
        """
        first = self.next_inviter
        spare = 64
        self.next_inviter += count + spare
        code_sql = harness.invite_code_sql(f"(g + {INVITERS_CODE_BASE})")
        with self.engine.begin() as conn:
            codes = conn.execute(
                text(
                    f"""
                    INSERT INTO users (phone_number, invite_code, invited_count, created_at)
                    SELECT '+' || (:base + g)::text, {code_sql}, 0, :now
                    FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g
                    ORDER BY g
                    ON CONFLICT (invite_code) DO NOTHING
                    RETURNING invite_code
                    """
                ),
                {"alphabet": harness.ALPHABET, "base": 70_000_000_000 + INVITERS_PHONES, "first": first,
                 "last": first + count + spare - 1, "now": utcnow()},
            ).scalars().all()[:count]
        harness.vacuum_analyze(self.engine, "users")
        tokens = self.signed_in_users(count)
        return self._write([f"{token} {code}" for token, code in zip(tokens, codes, strict=True)])

    def request_block(self) -> int:
        """The first of 1,000,000 phone numbers no other request_code run uses."""
        block = REQUEST_PHONES + self.next_request_block * 1_000_000
        self.next_request_block += 1
        return block


# --------------------------------------------------------------------------- against the floor

FLOOR_COMMAND = [  # bench/floor_app.py on Granian, as many workers as the app's
    "{python}", "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}",
    "--workers", str(TWO_WORKERS), "--no-ws", "bench.floor_app:app",
]


def floor_scenarios(owners: list[harness.Owner], pools: Pools, pool_size: int) -> list[tuple[str, str, object]]:
    """(scenario, label, spec maker) of the comparison; a maker builds a run's spec with fresh single-use data."""

    def profile(owner: harness.Owner):
        return lambda scenario: WrkSpec(scenario, f"{owner.size:,}", "/api/v1/profile/me/", FLOOR_CONNECTIONS, "get",
                                        headers={"Authorization": f"Bearer {owner.token}"})

    def auth_code(scenario: str) -> WrkSpec:
        return WrkSpec(scenario, "valid codes", "/api/v1/auth/auth_code/", FLOOR_CONNECTIONS, "pool",
                       args=[str(pools.confirmation_codes(pool_size)), "{threads}", "body"], pool=pool_size)

    def activate(scenario: str) -> WrkSpec:
        return WrkSpec(scenario, "distinct inviters", "/api/v1/profile/activate_invite/", FLOOR_CONNECTIONS, "pool",
                       args=[str(pools.activators_with_inviters(pool_size)), "{threads}", "pair"], pool=pool_size)

    return [("profile", f"{owners[0].size:,}", profile(owners[0])),
            ("profile", f"{owners[-1].size:,}", profile(owners[-1])),
            ("auth_code", "valid codes", auth_code), ("activate", "distinct inviters", activate)]


def versus_floor(ctx: dict, wrk: Wrk, pools: Pools, database_url: str, workdir: Path, redis_client,
                 owners: list[harness.Owner], rounds: int) -> None:
    """The app in the production shape (Redis, two workers) and the floor, interleaved.

    Both servers run side by side on the same database; each scenario runs ``rounds`` times
    on each, alternating app, floor, app, floor..., every write run with a fresh pool. The
    app's runs are scenarios ``<name>_2w``, the floor's ``floor_<name>``. Redis database 15
    (``REDIS_URL``) is flushed before the start and after the stop, also on failure.
    """
    pool_size = wrk.duration * ctx["pool_rate"]
    redis_client.flushdb()
    log(f"flushed Redis {REDIS_URL}")
    floor_command = [part.replace("{python}", sys.executable) for part in FLOOR_COMMAND]
    try:
        env = {"REFLEX_REDIS_URL": REDIS_URL, "WORKERS": str(TWO_WORKERS)}
        with harness.running_server(database_url, workdir / "server.log", env) as app, \
                harness.running_server(database_url, workdir / "floor.log", command=floor_command,
                                       ready_paths=("/health",)) as floor:
            ctx["restart_2w_s"] = app.start_seconds
            ctx["workers_2w"], ctx["floor_workers"] = app.worker_pids(), floor.worker_pids()
            log(f"app workers {ctx['workers_2w']}, floor workers {ctx['floor_workers']}")
            ctx["checks"].append(
                f"against the floor: {len(ctx['workers_2w'])} app workers and {len(ctx['floor_workers'])} floor "
                f"workers" + ("" if len(ctx["workers_2w"]) == len(ctx["floor_workers"]) == TWO_WORKERS
                              else f", **wanted {TWO_WORKERS} each**"))
            sides = (("app", app, lambda name: name + SUFFIX_2W), ("floor", floor, lambda name: FLOOR + name))
            for _, server, _ in sides:
                wrk.server = server
                wrk.run(WrkSpec("warm-up", "0", "/api/v1/profile/me/", FLOOR_CONNECTIONS, "get",
                                headers={"Authorization": f"Bearer {owners[0].token}"}), duration=3, record=False)
            for scenario, label, make in floor_scenarios(owners, pools, pool_size):
                for number in range(rounds):
                    for side, server, name in sides:
                        wrk.server = server
                        log(f"round {number + 1}/{rounds}: {side}")
                        wrk.run(make(name(scenario)))
            time.sleep(3)  # at rest: no request for a few seconds
            ctx["rest_rss_kb"] = {side: max(server.worker_rss_kb().values(), default=0) for side, server, _ in sides}
            log("worker RSS at rest: " + ", ".join(f"{side} {kb / 1024:.0f} MiB"
                                                   for side, kb in ctx["rest_rss_kb"].items()))
            ctx["hwm"] += wrk.hwm
            wrk.hwm = []
            ctx["hwm"].append(("two workers, Redis", with_roles(app.processes())))
            ctx["hwm"].append(("the floor", with_roles(floor.processes())))
    finally:
        try:
            redis_client.flushdb()
            log(f"flushed Redis {REDIS_URL}")
        except Exception as error:  # noqa: BLE001 - do not hide the run's own failure
            log(f"could not flush Redis {REDIS_URL}: {error}")
