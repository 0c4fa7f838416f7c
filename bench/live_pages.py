"""Open profile pages at scale (issue 14): N signed-in tabs sit on ``/profile`` while
referrals are activated for random tab owners; how fast each live update reaches its tab,
and what the open pages cost the server and Redis.

    .venv/bin/python -m bench.live_pages                  # N = 100, 1,000, 2,500, 5,000
    .venv/bin/python -m bench.live_pages --quick          # N = 100, 1,000, shorter runs
    .venv/bin/python -m bench.live_pages --sizes 100,500 --no-doc

Each N gets a fresh server (``scripts/run.sh``, ``WORKERS=2``, ``REFLEX_REDIS_URL`` on Redis
database 14, flushed before and after), on one throwaway PostgreSQL database seeded once.
The tabs (``bench/tabs.py``) speak Reflex's websocket protocol from a few OS processes. Then
``POST /api/v1/profile/activate_invite/`` runs at a steady rate, each by a fresh user, for
inviters drawn in turn from a shuffled list of the tab owners; a tab records the moment each
new ``invited_count`` reaches it. Writes ``docs/benchmarks-live.md`` and ``docs/live-pages.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import queue
import random
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import Engine

from bench import harness
from bench.harness import log, percentile
from bench.tabs import CONNECTS_AT_ONCE, CompiledState, TabFleet, TabSpec, compiled_state, raise_open_files_limit

SIZES = (100, 1_000, 2_500, 5_000)
QUICK_SIZES = (100, 1_000)
WORKERS = 2
REDIS_URL = "redis://127.0.0.1:6379/14"
REDIS_DB = 14
RATE = 5.0  # activations per second
DURATION = 60  # seconds of activations per N (quick: QUICK_DURATION)
QUICK_DURATION = 20
UPDATE_TIMEOUT = 10.0  # seconds after the 200 within which the tab must show the new count
SETTLE = 5.0  # seconds between the last tab opening and the first activation
CLOSED_WAIT = 3.0  # seconds between closing the tabs and counting what they left on the server
TABS_PER_PROCESS = 1_250
MAX_TAB_PROCESSES = 4
# Targets of issue 14, at the largest N (5,000).
TARGET_N = 5_000
TARGET_P95 = 1.0
TARGET_P99 = 2.0
TARGET_GROWTH_FROM = 1_000
TARGET_GROWTH_MB = 150
# "A few per worker": at most this many connections in subscribe mode per worker, at any N.
TARGET_REDIS_PER_WORKER = 5
# "Constant in N": the connections on the app's database at the largest N, at most this much more
# than at the smallest. Reflex's state manager keeps a pool of command connections that grows with
# the events in flight (opening thousands of tabs), not with the pages that sit open.
TARGET_REDIS_GROWTH = 0.25

OWNER_CODE_BASE = 1 << 27  # invite codes from numbers no other seeded user uses
ACTIVATOR_CODE_BASE = 1 << 28
OWNER_PHONES = "+7950"
ACTIVATOR_PHONES = "+7951"
DOC = harness.ROOT / "docs" / "benchmarks-live.md"
CHART = harness.ROOT / "docs" / "live-pages.png"


# --------------------------------------------------------------------------- seeding


@dataclass
class Seeded:
    owners: list[TabSpec]  # in seeding order; the run at N opens the first N
    codes: dict[int, str]  # owner id -> invite code
    activators: list[str]  # session tokens of users who have entered no code
    seconds: float = 0.0


def _seed_users(conn, count: int, phones: str, code_base: int, now) -> list[tuple[int, str, str]]:
    """``count`` users, each with a live session (the domain's token hashing); [(id, invite code, token)]."""
    from referral_app.domain import sessions
    from referral_app.models import AuthSession
    from referral_app.settings import settings

    rows = conn.execute(
        text(
            f"""
            INSERT INTO users (phone_number, invite_code, invited_count, created_at)
            SELECT :phones || lpad(g::text, 7, '0'), {harness.invite_code_sql(f"(g + {code_base})")}, 0, :now
            FROM generate_series(CAST(0 AS integer), CAST(:last AS integer)) AS g
            ORDER BY g
            RETURNING id, invite_code
            """
        ),
        {"alphabet": harness.ALPHABET, "phones": phones, "last": count - 1, "now": now},
    ).all()
    tokens = [secrets.token_urlsafe(sessions.TOKEN_BYTES) for _ in rows]
    expires = now + timedelta(days=settings.session_ttl_days)
    conn.execute(
        insert(AuthSession.__table__),
        [{"user_id": row.id, "token_hash": sessions.hash_token(token), "created_at": now, "expires_at": expires}
         for row, token in zip(rows, tokens, strict=True)],
    )
    return [(row.id, row.invite_code, token) for row, token in zip(rows, tokens, strict=True)]


def seed(engine: Engine, owners: int, activators: int) -> Seeded:
    from referral_app.domain.clock import utcnow

    started = time.perf_counter()
    now = utcnow()
    with engine.begin() as conn:
        owner_rows = _seed_users(conn, owners, OWNER_PHONES, OWNER_CODE_BASE, now)
        activator_rows = _seed_users(conn, activators, ACTIVATOR_PHONES, ACTIVATOR_CODE_BASE, now)
    harness.vacuum_analyze(engine)
    return Seeded(
        owners=[TabSpec(owner_id, token) for owner_id, _, token in owner_rows],
        codes={owner_id: code for owner_id, code, _ in owner_rows},
        activators=[token for _, _, token in activator_rows],
        seconds=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------- measuring


@dataclass
class Activation:
    owner_id: int
    sent: float  # monotonic
    answered: float = 0.0
    status: int = 0
    expected: int = 0  # the owner's invited_count after this activation (set on a 200)


def match_updates(activations: list[Activation], updates: dict[int, list[tuple[int, float]]],
                  timeout: float) -> tuple[list[float], int]:
    """Latencies (s, from the 200 to the tab's first count >= the expected one) and the missed count.

    An update that comes later than ``timeout`` after the 200, or never, is missed.
    """
    latencies, missed = [], 0
    for activation in activations:
        if activation.status != 200:
            continue
        arrivals = [when for count, when in updates.get(activation.owner_id, ())
                    if count >= activation.expected and when >= activation.sent]
        delay = min(arrivals) - activation.answered if arrivals else math.inf
        if delay <= timeout:
            latencies.append(delay)
        else:
            missed += 1
    return latencies, missed


def latency_summary(latencies: list[float], missed: int) -> dict[str, Any]:
    summary: dict[str, Any] = {"received": len(latencies), "missed": missed}
    if latencies:
        summary.update({f"p{p}": percentile(latencies, p) for p in (50, 95, 99)})
        summary["max"] = max(latencies)
    return summary


class Redis:
    """The numbers Redis gives about itself, and about the connections on our database."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_connect_timeout=5, decode_responses=True)

    def snapshot(self) -> dict[str, int]:
        ours = [c for c in self.client.client_list() if c.get("db") == str(REDIS_DB)
                and c.get("id") != str(self.client.client_id())]
        subscribers = [c for c in ours if any(int(c.get(k, 0) or 0) for k in ("sub", "psub", "ssub"))]
        return {
            "used_memory": int(self.client.info("memory")["used_memory"]),
            "connected_clients": int(self.client.info("clients")["connected_clients"]),
            "db_clients": len(ours),
            "db_subscribers": len(subscribers),
        }


def open_files(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def open_files_limit(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        pass
    return None


def server_snapshot(server: harness.Server, redis: Redis) -> dict[str, Any]:
    workers = server.worker_rss_kb()
    return {
        "worker_rss_kb": workers,
        "worker_fds": {pid: open_files(pid) for pid in workers},
        "cpu_s": processes_cpu(server.pids()),
        "redis": redis.snapshot(),
        "at": time.monotonic(),
    }


def processes_cpu(pids: list[int]) -> float:
    """CPU seconds of ``pids`` (those still running)."""
    total = 0.0
    for pid in pids:
        try:
            total += harness.cpu_seconds(pid)
        except OSError:
            pass
    return total


def cpu_percent(before: dict, after: dict) -> float:
    """Server CPU between two snapshots, in % of one core."""
    return 100 * (after["cpu_s"] - before["cpu_s"]) / max(after["at"] - before["at"], 1e-9)


async def _activate(base_url: str, plan: list[tuple[int, str, str]], rate: float) -> list[Activation]:
    """POST activate_invite for each (owner id, code, activator token), ``rate`` per second."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        async def one(owner_id: int, code: str, token: str) -> Activation:
            activation = Activation(owner_id, time.monotonic())
            try:
                response = await client.post("/api/v1/profile/activate_invite/", json={"invite_code": code},
                                             headers={"Authorization": f"Bearer {token}"})
                activation.status = response.status_code
            except httpx.HTTPError:
                activation.status = -1
            activation.answered = time.monotonic()
            return activation

        started = time.monotonic()
        tasks = []
        for i, item in enumerate(plan):
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(*item)))
        return list(await asyncio.gather(*tasks))


class Reports(threading.Thread):
    """Drains the tab processes' queue: readiness, counts (per owner), closings."""

    def __init__(self, source) -> None:
        super().__init__(daemon=True)
        self.source = source
        self.ready: list[tuple] = []
        self.closed: list[tuple] = []
        self.updates: dict[int, list[tuple[int, float]]] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                item = self.source.get(timeout=0.2)
            except queue.Empty:
                continue
            with self.lock:
                if item[0] == "count":
                    self.updates.setdefault(item[1], []).append((item[2], item[3]))
                elif item[0] == "ready":
                    self.ready.append(item)
                elif item[0] == "closed":
                    self.closed.append(item)

    def wait_for(self, kind: str, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(getattr(self, kind)) >= count:
                    return True
            time.sleep(0.2)
        return False


@dataclass
class RunResult:
    n: int
    processes: int = 0
    opened: int = 0
    failed: int = 0
    open_errors: list[str] = field(default_factory=list)
    open_seconds: float = 0.0
    open_p50: float = 0.0  # seconds from a tab's connect to its loaded profile
    open_p95: float = 0.0
    dropped: int = 0
    activations: int = 0
    activation_errors: int = 0
    activation_statuses: dict[int, int] = field(default_factory=dict)  # of those not 200 (-1: no answer)
    latency: dict[str, Any] = field(default_factory=dict)
    rest: dict[str, Any] = field(default_factory=dict)
    loaded: dict[str, Any] = field(default_factory=dict)  # N tabs open, before the activations
    after: dict[str, Any] = field(default_factory=dict)  # after the activations, tabs still open
    closed: dict[str, Any] = field(default_factory=dict)  # tabs closed, server still up
    cpu_open_pct: float = 0.0
    cpu_sitting_pct: float = 0.0
    cpu_activations_pct: float = 0.0
    cpu_tabs_pct: float = 0.0  # all tab processes together, during the activations
    nofile_server: int | None = None

    def worker_rss_mb(self, snap: dict) -> list[float]:
        return sorted((kb / 1024 for kb in snap.get("worker_rss_kb", {}).values()), reverse=True)

    @property
    def peak_worker_rss_mb(self) -> float:
        return max(self.worker_rss_mb(self.after) or self.worker_rss_mb(self.loaded) or [0.0])

    @property
    def rest_worker_rss_mb(self) -> float:
        return max(self.worker_rss_mb(self.rest) or [0.0])

    @property
    def per_page_kb(self) -> float | None:
        """(sum of the workers' RSS with N tabs open - at rest) / N."""
        if not self.opened:
            return None
        at_n = sum(self.after.get("worker_rss_kb", {}).values())
        at_rest = sum(self.rest.get("worker_rss_kb", {}).values())
        return (at_n - at_rest) / self.opened


def run_size(n: int, seeded: Seeded, counts: dict[int, int], database_url: str, workdir: Path,
             duration: int, rate: float, redis: Redis, compiled: CompiledState | None) -> RunResult:
    """One N: a fresh two-worker server, N tabs, ``duration`` s of activations, the numbers."""
    result = RunResult(n)
    owners = seeded.owners[:n]
    redis.client.flushdb()
    env = {"REFLEX_REDIS_URL": REDIS_URL, "WORKERS": str(WORKERS)}
    try:
        with harness.running_server(database_url, workdir / f"server-{n}.log", env) as server:
            workers = server.worker_pids()
            if len(workers) != WORKERS:
                raise RuntimeError(f"{len(workers)} worker processes, wanted {WORKERS}")
            result.nofile_server = min(filter(None, (open_files_limit(pid) for pid in workers)), default=None)
            with httpx.Client(base_url=server.url, timeout=10) as client:  # warm both workers up a little
                for _ in range(20):
                    client.get("/api/v1/profile/me/", headers={"Authorization": f"Bearer {owners[0].token}"})
            time.sleep(2)
            result.rest = server_snapshot(server, redis)

            processes = min(MAX_TAB_PROCESSES, max(1, math.ceil(n / TABS_PER_PROCESS)))
            result.processes = processes
            fleet = TabFleet(server.url, owners, processes, open_timeout=max(60.0, n / 20), compiled=compiled)
            reports = Reports(fleet.reports)
            reports.start()
            log(f"N={n:,}: opening the tabs from {processes} processes")
            opening = server_snapshot(server, redis)
            fleet.start()
            try:
                if not reports.wait_for("ready", len(fleet.procs), timeout=120 + n / 5):
                    raise RuntimeError(f"the tab processes did not report ready: {reports.ready}")
                result.opened = sum(r[2] for r in reports.ready)
                failed_owners = {owner for r in reports.ready for owner in r[3]}
                result.failed = len(failed_owners)
                result.open_errors = [e for r in reports.ready for e in r[4]][:5]
                result.open_seconds = max(r[5] for r in reports.ready)
                open_times = [t for r in reports.ready for t in r[6]]
                if open_times:
                    result.open_p50 = percentile(open_times, 50)
                    result.open_p95 = percentile(open_times, 95)
                opened = server_snapshot(server, redis)
                result.cpu_open_pct = cpu_percent(opening, opened)
                log(f"N={n:,}: {result.opened:,} tabs open in {result.open_seconds:.1f} s (each p50 {result.open_p50:.2f} s, "
                    f"p95 {result.open_p95:.2f} s), {result.failed} failed"
                    + (f" ({result.open_errors[0]})" if result.open_errors else ""))
                time.sleep(SETTLE)
                result.loaded = server_snapshot(server, redis)
                result.cpu_sitting_pct = cpu_percent(opened, result.loaded)

                # Inviters: a shuffled list of the owners whose tab opened, in turn.
                total = int(duration * rate)
                inviters = [spec.owner_id for spec in owners if spec.owner_id not in failed_owners]
                if not inviters:
                    raise RuntimeError(f"no tab opened: {result.open_errors}")
                random.Random(n).shuffle(inviters)
                plan = []
                for i in range(total):
                    owner_id = inviters[i % len(inviters)]
                    plan.append((owner_id, seeded.codes[owner_id], seeded.activators.pop()))
                log(f"N={n:,}: {total} activations at {rate:g}/s")
                clients_before = processes_cpu(fleet.pids())
                activations = asyncio.run(_activate(server.url, plan, rate))
                for activation in activations:  # each owner's activations are N/rate s apart: in order
                    if activation.status == 200:
                        counts[activation.owner_id] = counts.get(activation.owner_id, 0) + 1
                        activation.expected = counts[activation.owner_id]
                result.activations = len(activations)
                result.activation_errors = sum(1 for a in activations if a.status != 200)
                result.activation_statuses = dict(Counter(a.status for a in activations if a.status != 200))
                time.sleep(UPDATE_TIMEOUT)
                result.after = server_snapshot(server, redis)
                result.cpu_activations_pct = cpu_percent(result.loaded, result.after)
                result.cpu_tabs_pct = 100 * (processes_cpu(fleet.pids()) - clients_before) / max(
                    result.after["at"] - result.loaded["at"], 1e-9)
                with reports.lock:
                    updates = {owner: list(seen) for owner, seen in reports.updates.items()}
                result.latency = latency_summary(*match_updates(activations, updates, UPDATE_TIMEOUT))
                log(f"N={n:,}: " + describe_latency(result.latency)
                    + f", {result.activation_errors} activations not 200")
            finally:
                fleet.stop()
                reports.wait_for("closed", len(fleet.procs), timeout=10)
                reports.stopping.set()
                result.dropped = sum(r[2] for r in reports.closed)
            time.sleep(CLOSED_WAIT)
            result.closed = server_snapshot(server, redis)
    finally:
        try:
            redis.client.flushdb()
        except Exception as error:  # noqa: BLE001 - do not hide the run's own failure
            log(f"could not flush Redis {REDIS_URL}: {error}")
    return result


def describe_latency(latency: dict[str, Any]) -> str:
    if not latency.get("received"):
        return f"no update received, {latency.get('missed', 0)} missed"
    return (f"live update p50 {latency['p50'] * 1000:.0f} ms, p95 {latency['p95'] * 1000:.0f} ms, "
            f"p99 {latency['p99'] * 1000:.0f} ms, max {latency['max'] * 1000:.0f} ms, {latency['missed']} missed")


# --------------------------------------------------------------------------- report


def targets(results: list[RunResult]) -> list[tuple[str, str, str, bool | None]]:
    """(what, target, measured, met) for each target of issue 14; met is None when not measured."""
    by_n = {r.n: r for r in results}
    rows: list[tuple[str, str, str, bool | None]] = []
    at = by_n.get(TARGET_N)
    if at is None or not at.latency.get("received"):
        rows.append(("live update at 5,000 pages", f"p95 < {TARGET_P95:g} s, p99 < {TARGET_P99:g} s",
                     "not measured" if at is None else "no update received", None if at is None else False))
    else:
        ok = at.latency["p95"] < TARGET_P95 and at.latency["p99"] < TARGET_P99 and at.latency["missed"] == 0
        rows.append(("live update at 5,000 pages", f"p95 < {TARGET_P95:g} s, p99 < {TARGET_P99:g} s, none missed",
                     f"p95 {at.latency['p95']:.2f} s, p99 {at.latency['p99']:.2f} s, {at.latency['missed']} missed",
                     ok))
    measured = [r for r in results if r.after]
    subscribed = [r.after["redis"]["db_subscribers"] for r in measured]
    if measured:
        rows.append(("Redis subscriptions", f"a few per worker at any N (at most {TARGET_REDIS_PER_WORKER})",
                     ", ".join(f"{c:,} at {r.n:,}" for c, r in zip(subscribed, measured, strict=True)),
                     max(subscribed) <= TARGET_REDIS_PER_WORKER * WORKERS))
    else:
        rows.append(("Redis subscriptions", "a few per worker", "not measured", None))
    if len(measured) >= 2:
        counts = [r.after["redis"]["db_clients"] for r in measured]
        ceiling = counts[0] * (1 + TARGET_REDIS_GROWTH) + WORKERS
        rows.append(("Redis connections", f"constant in N (at the largest N at most {TARGET_REDIS_GROWTH:.0%} "
                     "more than at the smallest, + 1 per worker)",
                     ", ".join(f"{c:,} at {r.n:,}" for c, r in zip(counts, measured, strict=True)),
                     counts[-1] <= ceiling))
    else:
        rows.append(("Redis connections", "constant in N", "needs two sizes", None))
    low, high = by_n.get(TARGET_GROWTH_FROM), by_n.get(TARGET_N)
    if low and high and low.after and high.after:
        growth = high.peak_worker_rss_mb - low.peak_worker_rss_mb
        rows.append((f"worker memory, {TARGET_GROWTH_FROM:,} → {TARGET_N:,} pages", f"< {TARGET_GROWTH_MB} MB",
                     f"+{growth:.0f} MB ({low.peak_worker_rss_mb:.0f} → {high.peak_worker_rss_mb:.0f} MB)",
                     growth < TARGET_GROWTH_MB))
    else:
        rows.append((f"worker memory, {TARGET_GROWTH_FROM:,} → {TARGET_N:,} pages", f"< {TARGET_GROWTH_MB} MB",
                     "not measured", None))
    return rows


def _mb(value: float) -> str:
    return f"{value:,.0f}"


def size_table(r: RunResult) -> str:
    lat = r.latency

    def ms(key: str) -> str:
        return f"{lat[key] * 1000:,.0f} ms" if key in lat else "–"

    def snap_row(label: str, snap: dict) -> str:
        if not snap:
            return f"| {label} | – | – | – | – | – |"
        rss = " / ".join(_mb(kb / 1024) for kb in sorted(snap["worker_rss_kb"].values(), reverse=True))
        fds = " / ".join("?" if v is None else f"{v:,}" for v in snap["worker_fds"].values())
        red = snap["redis"]
        return (f"| {label} | {rss} | {fds} | {red['db_clients']:,} ({red['db_subscribers']:,} subscribed) | "
                f"{red['connected_clients']:,} | {red['used_memory'] / 2**20:,.1f} |")

    per_page = r.per_page_kb
    lines = [
        f"### {r.n:,} open pages",
        "",
        f"{r.opened:,} tabs opened ({r.failed:,} failed) from {r.processes} process{'es' * (r.processes > 1)} in "
        f"{r.open_seconds:.1f} s (connect to loaded profile: p50 {r.open_p50:.2f} s, p95 {r.open_p95:.2f} s, "
        f"{CONNECTS_AT_ONCE} connecting at once per process); "
        f"{r.dropped:,} dropped by the server while open. {r.activations:,} activations "
        f"({r.activation_errors:,} not 200"
        + (": " + ", ".join(f"{count} × {'no answer' if status < 0 else status}"
                            for status, count in sorted(r.activation_statuses.items())) if r.activation_statuses else "")
        + ")." + (f" First errors opening tabs: {'; '.join(r.open_errors[:3])}." if r.open_errors else ""),
        "",
        "| live update (from the 200) | p50 | p95 | p99 | max | received | missed (> "
        f"{UPDATE_TIMEOUT:g} s) |",
        "|---|---|---|---|---|---|---|",
        f"| | {ms('p50')} | {ms('p95')} | {ms('p99')} | {ms('max')} | {lat.get('received', 0):,} | "
        f"{lat.get('missed', 0):,} |",
        "",
        "| moment | worker RSS (MB) | worker open files | Redis connections on db 14 | Redis clients (server) | "
        "Redis used_memory (MiB) |",
        "|---|---|---|---|---|---|",
        snap_row("at rest (no tab)", r.rest),
        snap_row(f"{r.n:,} tabs open", r.loaded),
        snap_row("after the activations", r.after),
        snap_row(f"{CLOSED_WAIT:g} s after the tabs closed", r.closed),
        "",
        f"Server CPU (whole process group, % of one core): {r.cpu_open_pct:.0f}% while the tabs opened, "
        f"{r.cpu_sitting_pct:.0f}% while they sat ({SETTLE:g} s), {r.cpu_activations_pct:.0f}% during the "
        f"activations (the tab processes together: {r.cpu_tabs_pct:.0f}%). Memory per open page: "
        + (f"{per_page:,.1f} kB" if per_page is not None else "–")
        + " (sum of the workers' RSS after the activations minus at rest, over N).",
        "",
    ]
    return "\n".join(lines)


def draw_chart(results: list[RunResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in results if r.latency.get("received")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    ns = [r.n for r in measured]
    for key, style in (("p50", "o-"), ("p95", "s-"), ("p99", "^-")):
        left.plot(ns, [r.latency[key] * 1000 for r in measured], style, label=key)
    left.axhline(TARGET_P95 * 1000, color="grey", linestyle="--", linewidth=0.8, label=f"target p95 {TARGET_P95:g} s")
    left.axhline(TARGET_P99 * 1000, color="grey", linestyle=":", linewidth=0.8, label=f"target p99 {TARGET_P99:g} s")
    left.set_xlabel("open profile pages (N)")
    left.set_ylabel("live update latency (ms)")
    left.set_title("Activation 200 → tab shows the referral")
    left.legend()
    withmem = [r for r in results if r.after]
    right.plot([r.n for r in withmem], [r.peak_worker_rss_mb for r in withmem], "o-", label="largest worker, N open")
    right.plot([r.n for r in withmem], [r.rest_worker_rss_mb for r in withmem], "o--", label="largest worker, at rest")
    right.set_xlabel("open profile pages (N)")
    right.set_ylabel("RSS (MB)")
    right.set_title(f"Memory per worker ({WORKERS} workers)")
    right.legend()
    for axis in (left, right):
        axis.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(ctx: dict, results: list[RunResult]) -> str:
    env = ctx["env"]
    yes = {True: "met", False: "**not met**", None: "not measured"}
    target_rows = "\n".join(f"| {what} | {target} | {measured} | {yes[ok]} |"
                            for what, target, measured, ok in targets(results))
    summary = "\n".join(
        f"| {r.n:,} | {r.opened:,} | "
        + (f"{r.latency['p50'] * 1000:,.0f} | {r.latency['p95'] * 1000:,.0f} | {r.latency['p99'] * 1000:,.0f} | "
           if r.latency.get("received") else "– | – | – | ")
        + f"{r.latency.get('missed', 0):,} | {_mb(r.rest_worker_rss_mb)} → {_mb(r.peak_worker_rss_mb)} | "
        + (f"{r.per_page_kb:,.0f}" if r.per_page_kb is not None else "–")
        + f" | {r.after.get('redis', {}).get('db_clients', 0):,} | {r.cpu_activations_pct:.0f}% |"
        for r in results
    )
    return f"""# Benchmark: open live profile pages

Generated by `python -m bench.live_pages{ctx['args']}` (issue 14) on {env['date']}, commit `{env['commit']}`.
Machine: {env['nproc']} × {env['cpu']}, load average at the start {env['loadavg']}. {ctx['pg_version']},
{ctx['redis_version']}. The tab processes, the activations, PostgreSQL and Redis ran on the same machine
as the server.

## How it is measured

- **Server**: `scripts/run.sh` (the production build, Granian) with `WORKERS={WORKERS}` and
  `REFLEX_REDIS_URL={REDIS_URL}` (database {REDIS_DB}, flushed before each start and after each stop),
  `RATE_LIMITS_ENABLED=false`, on a throwaway PostgreSQL database. A fresh server for each N, so
  "at rest" is a server that has served only a few warm-up requests. Open files limit of a worker:
  {ctx['nofile_server']} (the benchmark raises its own soft `RLIMIT_NOFILE` to the hard limit
  before starting the server, whose workers inherit it).
- **Tabs**: {ctx['owners']:,} users with a session each, seeded in bulk (session tokens hashed by
  `referral_app.domain.sessions`). The run at N opens the first N as tabs (`bench/tabs.py`): a
  python-socketio client per tab that speaks Reflex's protocol like the compiled page does (Socket.IO
  at `/_event`, the tab token in the query, the page's `Origin` and the `referral_session` cookie in
  the handshake, `hydrate_and_load` for `/profile` in the CONNECT packet). A tab counts as open when
  the server has sent it the loaded profile. The tabs run in up to {MAX_TAB_PROCESSES} OS processes
  ({TABS_PER_PROCESS:,} tabs each at most), asyncio in each.
- **Activations**: {ctx['duration']} s at {ctx['rate']:g} per second of `POST /api/v1/profile/activate_invite/`,
  each by a fresh seeded user, for inviters taken in turn from a shuffled list of the N tab owners
  (so one owner's activations are N / {ctx['rate']:g} s apart). **Latency** is from the moment the
  client has the activation's 200 to the moment the owner's tab receives a state delta with the new
  `invited_count` (the same monotonic clock in every process). An update that has not come
  {UPDATE_TIMEOUT:g} s after the 200 counts as **missed**. Since the server publishes before it
  answers, a small latency can be negative.
- **Server numbers**: worker RSS of each Granian worker (the supervisor left out), open file
  descriptors per worker (`/proc/<pid>/fd`), server CPU as the CPU time of the whole process group
  per second of wall time. **Redis**: `INFO memory` `used_memory` and `INFO clients`
  `connected_clients` are for the whole Redis server (other programs on this machine use it too);
  the connections on database {REDIS_DB} are counted in `CLIENT LIST` (the app's, the benchmark's
  own left out), with those in subscribe mode in brackets. The Redis targets below are judged on
  both: the subscriptions must stay a few per worker, and all connections must not grow with N
  beyond {TARGET_REDIS_GROWTH:.0%} (Reflex's state manager also keeps a pool of command
  connections, which grows with the events in flight, not with the pages that sit open).

## Summary

| N | tabs open | p50 (ms) | p95 (ms) | p99 (ms) | missed | largest worker RSS, rest → N (MB) | per page (kB) | Redis conns, db {REDIS_DB} | server CPU, activations |
|---|---|---|---|---|---|---|---|---|---|
{summary}

![Live update latency and worker memory against the number of open pages](live-pages.png)

## Targets (issue 14)

| what | target | measured | |
|---|---|---|---|
{target_rows}

## Each N

{chr(10).join(size_table(r) for r in results)}"""


# --------------------------------------------------------------------------- main


def parse_sizes(text_value: str) -> list[int]:
    sizes = sorted({int(part) for part in text_value.split(",") if part.strip()})
    if not sizes or sizes[0] < 1 or sizes[-1] > 20_000:
        raise argparse.ArgumentTypeError("sizes between 1 and 20000, comma-separated")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live_pages", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"N = {', '.join(map(str, QUICK_SIZES))} and {QUICK_DURATION} s of activations")
    parser.add_argument("--sizes", type=parse_sizes, help="comma-separated N (default 100,1000,2500,5000)")
    parser.add_argument("--duration", type=int, help=f"seconds of activations per N ({DURATION}; quick {QUICK_DURATION})")
    parser.add_argument("--rate", type=float, default=RATE, help=f"activations per second ({RATE:g})")
    parser.add_argument("--no-doc", action="store_true", help="print only; do not write docs/")
    args = parser.parse_args(argv)
    sizes = args.sizes or list(QUICK_SIZES if args.quick else SIZES)
    duration = args.duration or (QUICK_DURATION if args.quick else DURATION)
    if not 1 <= duration <= 600 or not 0.1 <= args.rate <= 200:
        parser.error("need 1 <= --duration <= 600 and 0.1 <= --rate <= 200")

    harness.sigterm_as_interrupt()
    harness.domain_modules()
    soft, hard = raise_open_files_limit()
    log(f"open files limit (soft/hard) {soft:,}/{hard:,}")
    if soft < max(sizes) * 2 + 1000:
        log(f"warning: {soft:,} open files may not be enough for {max(sizes):,} tabs and their server side")
    redis = Redis(REDIS_URL)
    try:
        redis_version = "Redis " + redis.client.info("server")["redis_version"]
    except Exception as error:  # noqa: BLE001
        raise SystemExit(f"Redis at {REDIS_URL} does not answer ({error})") from None
    workdir = Path(tempfile.mkdtemp(prefix="referral-live-bench-"))
    log(f"work files (server logs) in {workdir}")
    argv_text = "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    ctx: dict[str, Any] = {"env": harness.environment(), "args": argv_text, "duration": duration,
                           "rate": args.rate, "redis_version": redis_version, "owners": max(sizes)}
    results: list[RunResult] = []
    with harness.throwaway_database("referral_live_bench") as (_, database_url):
        engine = create_engine(database_url)
        # The first start builds the frontend and creates the tables; seeding needs them.
        with harness.running_server(database_url, workdir / "server-setup.log") as _server:
            pass
        ctx["pg_version"] = harness.pg_version(engine)
        compiled = compiled_state(harness.ROOT / ".web")
        if compiled is None:
            log("no state hashes in .web/utils/context.jsx: every hydrate sends the whole state")
        activations = sum(int(duration * args.rate) for _ in sizes)
        seeded = seed(engine, max(sizes), activations)
        log(f"seeded {max(sizes):,} tab owners and {activations:,} activators, each signed in, "
            f"in {seeded.seconds:.1f} s")
        counts: dict[int, int] = {}
        for n in sizes:
            results.append(run_size(n, seeded, counts, database_url, workdir, duration, args.rate, redis, compiled))
        engine.dispose()
    (workdir / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=1, default=str))
    log(f"raw numbers in {workdir / 'results.json'}")
    ctx["nofile_server"] = ", ".join(sorted({f"{r.nofile_server:,}" for r in results if r.nofile_server})) or "?"
    for what, target, measured, ok in targets(results):
        log(f"target {what}: {target}; measured {measured}: "
            + {True: "met", False: "NOT MET", None: "not measured"}[ok])
    if args.no_doc:
        return 0
    draw_chart(results, CHART)
    DOC.write_text(render(ctx, results))
    log(f"wrote {DOC.relative_to(harness.ROOT)} and {CHART.relative_to(harness.ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
