#!/usr/bin/env python3
"""Benchmark: does the profile cost more for a user with more referrals?

Runs the app as users do (``scripts/run.sh``) against a fresh PostgreSQL database, seeds
owners with 0, 1,000, 10,000 and 100,000 referrals, and measures, from this separate
process over HTTP:

- ``GET /api/v1/profile/me/`` (profile + first page of referrals),
- ``GET /api/v1/profile/me/referrals/?limit=20&cursor=...`` deep in the list,
- ``POST /api/v1/profile/activate_invite/`` by fresh users entering each owner's code.

It also runs EXPLAIN ANALYZE on the SQL the profile endpoint executes (captured from the
app's own domain functions) for the smallest and the largest owner. The result is printed
and written to ``docs/benchmarks-profile.md``. The database is dropped and the server
stopped at the end, also on failure or Ctrl-C.

    .venv/bin/python bench/profile_vs_referrals.py [--requests 300] [--sizes 0,1000,10000,100000]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, event

from harness import (
    ROOT,
    Owner,
    domain_modules,
    environment,
    find_deep_cursor,
    log,
    make_owners,
    pg_version,
    running_server,
    seed,
    sigterm_as_interrupt,
    sign_in,
    throwaway_database,
)

DOC_PATH = ROOT / "docs" / "benchmarks-profile.md"
PAGE_SIZE = 20  # the profile's first page (REFERRAL_PAGE_SIZE default) and the deep page's limit


# --------------------------------------------------------------------------- measuring


@dataclass
class Stats:
    count: int
    p50: float
    p95: float
    p99: float
    max: float
    rps: float

    @classmethod
    def of(cls, samples_ms: list[float], elapsed_s: float) -> Stats:
        cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
        return cls(len(samples_ms), cuts[49], cuts[94], cuts[98], max(samples_ms), len(samples_ms) / elapsed_s)


class Series:
    """Sequential timed requests of one kind; ``check`` validates every answer."""

    def __init__(self, owner: Owner, key: str, request, check) -> None:
        self.owner, self.key, self.request, self.check = owner, key, request, check
        self.samples: list[float] = []
        self.elapsed = 0.0

    def warm_up(self, count: int) -> None:
        for _ in range(count):
            self.check(self.request())

    def run(self, count: int) -> None:
        started_series = time.perf_counter()
        for _ in range(count):
            started = time.perf_counter()
            response = self.request()
            self.samples.append((time.perf_counter() - started) * 1000)
            self.check(response)
        self.elapsed += time.perf_counter() - started_series

    def finish(self) -> None:
        self.owner.results[self.key] = Stats.of(self.samples, self.elapsed)


def read_series(client: httpx.Client, owner: Owner) -> list[Series]:
    """The profile and the deep referral page of ``owner``, with their answer checks."""
    headers = {"Authorization": f"Bearer {owner.token}"}
    expected_first_page = min(owner.size, PAGE_SIZE)

    def check_profile(response: httpx.Response) -> None:
        if response.status_code != 200:
            raise RuntimeError(f"profile of {owner.phone}: HTTP {response.status_code} {response.text[:200]}")
        body = response.json()
        if body["invited_count"] != owner.size or len(body["invited_users"]) != expected_first_page:
            raise RuntimeError(
                f"profile of {owner.phone}: invited_count {body['invited_count']}, "
                f"{len(body['invited_users'])} users on the first page; seeded {owner.size}"
            )

    params = {"limit": PAGE_SIZE, **({"cursor": owner.deep_cursor} if owner.deep_cursor else {})}
    expected_deep_page = min(owner.size - owner.deep_position, PAGE_SIZE)

    def check_page(response: httpx.Response) -> None:
        if response.status_code != 200:
            raise RuntimeError(f"referral page of {owner.phone}: HTTP {response.status_code} {response.text[:200]}")
        if len(response.json()["items"]) != expected_deep_page:
            raise RuntimeError(f"referral page of {owner.phone}: {len(response.json()['items'])} items")

    return [
        Series(owner, "profile", lambda: client.get("/api/v1/profile/me/", headers=headers), check_profile),
        Series(
            owner,
            "page",
            lambda: client.get("/api/v1/profile/me/referrals/", params=params, headers=headers),
            check_page,
        ),
    ]


def measure_reads(client: httpx.Client, owners: list[Owner], count: int, warmup: int, rounds: int) -> None:
    """Warm up every series, then run them in ``rounds`` interleaved slices.

    Interleaving spreads any background load of a shared machine over all owners
    instead of letting it land on whichever owner happened to be measured then.
    """
    series = [one for owner in owners for one in read_series(client, owner)]
    for one in series:
        one.warm_up(warmup)
    slices = [count // rounds + (1 if r < count % rounds else 0) for r in range(rounds)]
    for r, size in enumerate(slices):
        order = series[r % len(series) :] + series[: r % len(series)]  # rotate who goes first
        for one in order:
            one.run(size)
    for one in series:
        one.finish()


def measure_activations(client: httpx.Client, owners: list[Owner], per_owner: int) -> None:
    """Fresh users enter each owner's code; the owner's invited_count must follow."""
    tokens = {
        owner.phone: [sign_in(client, f"+7913{index:03d}{n:04d}") for n in range(per_owner)]
        for index, owner in enumerate(owners, start=1)
    }
    for owner in owners:
        samples = []
        series_started = time.perf_counter()
        for token in tokens[owner.phone]:
            started = time.perf_counter()
            response = client.post(
                "/api/v1/profile/activate_invite/",
                json={"invite_code": owner.invite_code},
                headers={"Authorization": f"Bearer {token}"},
            )
            samples.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"activating {owner.invite_code}: HTTP {response.status_code} {response.text[:200]}")
        owner.results["activate"] = Stats.of(samples, time.perf_counter() - series_started)
        profile = client.get("/api/v1/profile/me/", headers={"Authorization": f"Bearer {owner.token}"}).json()
        if profile["invited_count"] != owner.size + per_owner:
            raise RuntimeError(f"{owner.phone}: invited_count {profile['invited_count']} after {per_owner} activations")


# --------------------------------------------------------------------------- EXPLAIN


def explain_profile_queries(database_url: str, owner: Owner) -> list[tuple[str, str, float, list[str]]]:
    """EXPLAIN ANALYZE of each SELECT that GET /profile/me/ and the deep page execute.

    The SQL is captured from the app's own domain functions (the same code the route
    calls), so the plans are those of the real queries.
    Returns (label, first plan line, execution ms, full plan) per statement.
    """
    domain_modules()
    from sqlmodel import Session

    from referral_app.domain import referrals, sessions

    engine = create_engine(database_url)
    captured: list[tuple[str, object]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    steps = [
        ("authenticated_user_id (token → user id)", lambda db: sessions.authenticated_user_id(db, owner.token)),
        ("get_profile (user, inviter)", lambda db: referrals.get_profile(db, owner.id)),
        ("list_referrals, first page", lambda db: referrals.list_referrals(db, owner.id, limit=PAGE_SIZE)),
    ]
    if owner.deep_cursor:
        steps.append(
            (
                f"list_referrals, page after #{owner.deep_position:,}",
                lambda db: referrals.list_referrals(db, owner.id, cursor=owner.deep_cursor, limit=PAGE_SIZE),
            )
        )
    plans = []
    for label, step in steps:
        captured.clear()
        with Session(engine) as db:
            step(db)
        for statement, parameters in captured:
            raw = engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                plan = [row[0] for row in cur.fetchall()]
                raw.rollback()
            finally:
                raw.close()
            execution = next(
                float(m.group(1)) for line in plan if (m := re.match(r"Execution Time: ([\d.]+) ms", line))
            )
            plans.append((label, plan[0].strip(), execution, plan))
    engine.dispose()
    return plans


# --------------------------------------------------------------------------- report


def reading(owners: list[Owner], plans: dict) -> str:
    smallest, largest = owners[0], owners[-1]
    ratios = {
        key: largest.results[key].p50 / smallest.results[key].p50
        for key in ("profile", "page", "activate")
        if key in largest.results
    }
    flat = all(ratio < 1.5 for ratio in ratios.values())
    names = {"profile": "the profile", "page": "a deep referral page", "activate": "an activation"}
    parts = ", ".join(f"{names[key]} ×{ratio:.2f}" for key, ratio in ratios.items())
    if flat:
        verdict = (
            "Latency does not grow with the number of referrals: from "
            f"{smallest.size:,} to {largest.size:,} referrals the median changes by {parts} "
            "(within run-to-run noise). "
        )
    else:
        verdict = (
            "Latency grows with the number of referrals: from "
            f"{smallest.size:,} to {largest.size:,} referrals the median changes by {parts}. "
        )
    list_plans = [plan for entries in plans.values() for label, _, _, plan in entries if "list_referrals" in label]
    keyset = all(
        plan[0].lstrip().startswith("Limit")
        and any("Index Scan" in line and "ix_users_referrals" in line for line in plan)
        for plan in list_plans
    )
    if keyset:
        queries = (
            "That matches the queries: the profile reads the user by token and by primary key and takes "
            "`invited_count` from the user's row (never `COUNT(*)`); the referral list is a keyset page, "
            f"a `LIMIT {PAGE_SIZE + 1}` index scan on `ix_users_referrals (invited_by_id, activated_at, id)` "
            "that starts at the cursor, so in the plans below it reads the same few rows whether the owner "
            "has no referrals or 100,000 and whether the page is the first or the last. "
        )
    else:
        queries = (
            "Not every referral-list plan below is a LIMIT over an index scan of `ix_users_referrals`; "
            "read the plans to see which query scans more than one page. "
        )
    return (
        verdict
        + queries
        + "An activation updates one counter row and walks the chain of inviters above the owner, "
        "not the owner's referrals. What is left is the per-request cost of the server (FastAPI "
        "inside the Reflex/ASGI stack, a pooled PostgreSQL connection, JSON), the same for every owner."
    )


def render(env: dict[str, str], pg_version: str, owners: list[Owner], extra: dict, plans: dict) -> str:
    def row(owner: Owner, key: str, what: str) -> str:
        s = owner.results[key]
        return (
            f"| {owner.size:,} | {what} | {s.count} | {s.p50:.2f} | {s.p95:.2f} | {s.p99:.2f} "
            f"| {s.max:.2f} | {s.rps:.0f} |"
        )

    lines = [
        "| referrals | request | n | p50 ms | p95 ms | p99 ms | max ms | req/s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for owner in owners:
        lines.append(row(owner, "profile", "`GET /profile/me/`"))
    for owner in owners:
        where = f"after #{owner.deep_position:,}" if owner.deep_cursor else "first page"
        lines.append(row(owner, "page", f"`GET /profile/me/referrals/?limit=20` ({where})"))
    for owner in owners:
        if "activate" in owner.results:
            lines.append(row(owner, "activate", "`POST /profile/activate_invite/` (owner's code)"))
    table = "\n".join(lines)

    rss = extra.get("rss") or []
    if rss:
        rss_lines = "\n".join(
            f"| {pid} | `{cmd.replace(str(ROOT) + '/.venv/bin/', '')[:110]}` | {kb / 1024:.0f} |"
            for pid, cmd, kb in sorted(rss, key=lambda r: -r[2])
        )
        rss_text = (
            "Peak RSS (`VmHWM` from `/proc/<pid>/status`) of each process in the server's process group, "
            "read at the end of the run (the whole run, seeding and the 100,000-referral walk included):\n\n"
            "| pid | command | peak RSS MiB |\n|---:|---|---:|\n" + rss_lines
        )
    else:
        rss_text = "Peak RSS: not available."

    plan_rows, plan_blocks = [], []
    for size, entries in plans.items():
        for label, first, ms, plan in entries:
            plan_rows.append(f"| {size:,} | {label} | `{first}` | {ms:.3f} |")
            if "list_referrals" in label and size == owners[-1].size:
                plan_blocks.append(f"{label}, {size:,} referrals:\n\n```\n" + "\n".join(plan) + "\n```")
    plan_text = (
        "| referrals | domain call | top plan node | execution ms |\n|---:|---|---|---:|\n"
        + "\n".join(plan_rows)
        + "\n\n"
        + "\n\n".join(plan_blocks)
    )

    return f"""# Benchmark: profile and referral list vs number of referrals

Generated by `bench/profile_vs_referrals.py` (see `bench/README.md`); rerun it to refresh this page.

- Date: {env['date']}
- Machine: `nproc` = {env['nproc']}, {env['cpu']}
- Database: {pg_version}, fresh database on 127.0.0.1:5432, `VACUUM ANALYZE` after seeding
- App: commit `{env['commit']}` (plus uncommitted changes, if any), started with `scripts/run.sh`
  (production build, one port), `DEMO_MODE=true`, `SMS_DELAY_SECONDS=0`, `RATE_LIMITS_ENABLED=false`
  (these two only speed up the sign-ins that set the benchmark up)
- Client: a separate process, `httpx` sync client with keep-alive, requests one after another;
  {extra['warmup']} warm-up requests per series, then {extra['requests']} measured per series, run in
  {extra['rounds']} interleaved rounds over all owners ({extra['activations']} activations per owner,
  each by a fresh user)
- Load average when the run started (other work on the machine): {extra['loadavg']}
- Seeding: {extra['seeded']:,} referral rows in {extra['seed_s']:.1f} s; server start {extra['start_s']:.0f} s;
  whole run {extra['total_s']:.0f} s

## Result

{table}

Every response was 200; every profile answer had `invited_count` equal to the seeded count and
a full first page; walking each list with `limit=100` returned every referral exactly once.
"Deep" pages start at the last cursor of that walk (the last 100 referrals of the list).
p99 and max rest on a handful of requests each (3 of 300 for p99) and on a shared machine they
move from owner to owner between runs; compare medians, and the query plans below.

{reading(owners, plans)}

{rss_text}

## Query plans

EXPLAIN (ANALYZE, BUFFERS) of each SELECT that the profile endpoint and the deep page run,
captured from the app's domain functions (`referral_app/domain/sessions.py`, `referrals.py`).

{plan_text}
"""


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="measured requests per series (300)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up requests before each series (20)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved slices of each series (3)")
    parser.add_argument("--activations", type=int, default=30, help="activations per owner, 0 to skip (30)")
    parser.add_argument("--sizes", default="0,1000,10000,100000", help="referrals per owner, comma-separated")
    parser.add_argument("--no-doc", action="store_true", help=f"only print; do not write {DOC_PATH.relative_to(ROOT)}")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    if not 1 <= len(sizes) <= 9 or sizes[0] < 0 or sum(sizes) > 9_000_000:
        parser.error("1 to 9 sizes, each >= 0, at most 9,000,000 referrals in all")
    if not 1 <= args.rounds <= args.requests or args.requests < 2 or args.warmup < 0:
        parser.error("need --requests >= 2, 1 <= --rounds <= --requests, --warmup >= 0")
    sigterm_as_interrupt()

    run_started = time.monotonic()
    loadavg = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    workdir = Path(tempfile.mkdtemp(prefix="referral-bench-"))
    with throwaway_database() as (_, database_url), running_server(database_url, workdir / "server.log") as server:
        engine = create_engine(database_url)
        version = pg_version(engine)
        owners = make_owners(sizes)
        seed_s = seed(engine, owners)
        log(f"seeded {sum(sizes):,} referrals for owners with {', '.join(f'{s:,}' for s in sizes)} in {seed_s:.1f} s")

        with httpx.Client(base_url=server.url, timeout=30) as client:
            for owner in owners:
                owner.token = sign_in(client, owner.phone)
                find_deep_cursor(client, owner)
            log("signed in every owner through the API; walked every list")
            measure_reads(client, owners, args.requests, args.warmup, args.rounds)
            for owner in owners:
                log(
                    f"{owner.size:>7,} referrals: profile p50 {owner.results['profile'].p50:.2f} ms, "
                    f"deep page p50 {owner.results['page'].p50:.2f} ms"
                )
            # Before the activations, which add referrals to every owner.
            plans = {owner.size: explain_profile_queries(database_url, owner) for owner in (owners[0], owners[-1])}
            if args.activations:
                measure_activations(client, owners, args.activations)
                log("activations: " + ", ".join(f"{o.size:,}: p50 {o.results['activate'].p50:.2f} ms" for o in owners))

        engine.dispose()
        extra = {
            "requests": args.requests, "warmup": args.warmup, "activations": args.activations,
            "rounds": args.rounds, "loadavg": loadavg,
            "seeded": sum(sizes), "seed_s": seed_s, "start_s": server.start_seconds, "rss": server.processes(),
            "total_s": time.monotonic() - run_started,
        }
        report = render(environment(), version, owners, extra, plans)
    print()
    print(report)
    if not args.no_doc:
        DOC_PATH.parent.mkdir(exist_ok=True)
        DOC_PATH.write_text(report)
        log(f"wrote {DOC_PATH.relative_to(ROOT)}")
    log(f"whole run {time.monotonic() - run_started:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; server stopped and database dropped", file=sys.stderr)
        sys.exit(130)
