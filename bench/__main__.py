"""The benchmark (issues 7 and 14): API throughput and latency, cost against referral count,
the UI round trip, memory, and the API against the bare stack, measured against the app as it
runs in production. ``make bench`` runs ``python -m bench``; ``make bench ARGS=--quick`` a
short run.

It needs PostgreSQL on 127.0.0.1:5432 (user ``postgres``, trust) and Redis on 127.0.0.1:6379
(unless ``--skip-redis``), and installs ``wrk`` with apt-get when it is missing. In order:

1. a throwaway database ``referral_bench_<random>``; the app started with ``scripts/run.sh``
   (production build, one port, one worker) with ``RATE_LIMITS_ENABLED=false`` and
   ``SMS_DELAY_SECONDS=0``;
2. bulk seeding: owners with 0, 1,000, 10,000 and 100,000 referrals (signed in through the
   API), and before each single-use run its pool (``scenarios.Pools``);
3. ``wrk`` at 1, 16 and 64 connections (``scenarios.Wrk``): the profile at every size, a deep
   referral page, sign-in with valid codes, code requests, activations;
4. Chromium: "Get code", "Activate", cold first loads (``ui``);
5. py-spy on the worker during an extra run of the slowest path and of the profile (``profiling``);
6. the app restarted with ``SMS_DELAY_SECONDS=1.5`` for the code requests with the delay;
7. the app in the production shape (Redis, two workers) and the floor (``bench/floor_app.py``,
   two workers) side by side, interleaved: profile (0 and 100,000 referrals), sign-in,
   activations with distinct inviters (``scenarios.versus_floor``);
8. the open-pages benchmark, ``bench/live_pages.py`` (unless ``--skip-live``).

It writes ``docs/benchmarks.md`` and ``docs/profile-latency.png`` (``report``, ``charts``). The
servers are stopped and the database dropped at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from bench import harness
from bench.charts import draw_chart
from bench.harness import ROOT, Owner, ensure_wrk, log, py_spy_path, tool_version, with_roles
from bench.profiling import py_spy_profile
from bench.report import pick, render
from bench.scenarios import (
    ACTIVATOR_PHONES, CONNECTIONS, DELAYED_SMS, FLOOR_CONNECTIONS, INVITER_PHONE, PAGE_SIZE, REDIS_URL, SIZES,
    Pools, Wrk, WrkSpec, versus_floor,
)
from bench.ui import UI_CHROMIUM, ui_measurements

DOC_PATH = ROOT / "docs" / "benchmarks.md"
CHART_PATH = ROOT / "docs" / "profile-latency.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a short run (a few minutes): 3 s runs at 16 connections only, 2 rounds against the floor, "
                             "no browser, no SMS-delay server, the live-pages benchmark's --quick")
    parser.add_argument("--duration", type=int, default=None, help="seconds per wrk run (10; 3 with --quick)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="runs of each scenario on each side against the floor (5; 2 with --quick)")
    parser.add_argument("--ui-repetitions", type=int, default=50, help="UI clicks measured per interaction (50)")
    parser.add_argument("--ui-loads", type=int, default=10, help="cold first loads of the sign-in page (10)")
    parser.add_argument("--pool-rate", type=int, default=1500,
                        help="single-use items seeded per second of a run, per run (1500)")
    parser.add_argument("--skip-ui", action="store_true", help="no browser measurements")
    parser.add_argument("--skip-profile", action="store_true", help="no py-spy runs")
    parser.add_argument("--skip-redis", action="store_true",
                        help=f"no comparison with the floor (the app runs it on two workers with Redis, {REDIS_URL}, "
                             "flushed before and after)")
    parser.add_argument("--skip-live", action="store_true", help="not the open-pages benchmark (bench/live_pages.py)")
    parser.add_argument("--no-doc", action="store_true", help="print only; do not write docs/")
    args = parser.parse_args(argv)
    args.duration = args.duration or (3 if args.quick else 10)
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.skip_ui = args.skip_ui or args.quick
    connections = (FLOOR_CONNECTIONS,) if args.quick else CONNECTIONS
    if not 1 <= args.rounds <= 20:
        parser.error("need 1 <= --rounds <= 20")
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
                 "skip_redis": args.skip_redis, "pool_rate": args.pool_rate, "rounds": args.rounds}
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
            # An activation run per connection level, one more for py-spy, 2 per round against the floor,
            # the browser's activations (+2 warm-ups).
            started = time.perf_counter()
            pools.prepare_signed_in_users((len(connections) + 1 + 2 * args.rounds) * pool_size
                                          + args.ui_repetitions + 2)
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
            for conns in connections:
                for owner in owners:
                    wrk.run(WrkSpec("profile", f"{owner.size:,}", "/api/v1/profile/me/", conns, "get",
                                    headers=bearer(owner)))
            deepest = owners[-1]
            for conns in connections:
                wrk.run(WrkSpec("deep_page", f"{deepest.size:,} referrals, page after #{deepest.deep_position:,}",
                                f"/api/v1/profile/me/referrals/?limit={PAGE_SIZE}&cursor={deepest.deep_cursor}",
                                conns, "get", headers=bearer(deepest)))
            for conns in connections:
                pool = pools.confirmation_codes(pool_size)
                wrk.run(WrkSpec("auth_code", "valid codes", "/api/v1/auth/auth_code/", conns, "pool",
                                args=[str(pool), "{threads}", "body"], pool=pool_size))
            for conns in connections:
                wrk.run(WrkSpec("request_code", "delay 0", "/api/v1/auth/request_code/", conns, "phones",
                                args=[str(pools.request_block()), "500000"]))
            activations = 0
            for conns in connections:
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
                seconds = max(3 if args.quick else 5, args.duration)
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

        if not args.quick:  # the SMS delay needs a server of its own
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
            versus_floor(ctx, wrk, pools, database_url, workdir, redis_client, owners, args.rounds)
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
    if not args.skip_live:
        from bench import live_pages  # written alongside; imported only when it runs

        return live_pages.main(["--quick"] if args.quick else [])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; server stopped and database dropped", file=sys.stderr)
        sys.exit(130)
