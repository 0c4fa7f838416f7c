"""The open-pages benchmark's own logic (bench/live_pages.py, bench/tabs.py): how a tab reads
the server's deltas, how updates are matched to activations, and how targets are judged.
The benchmark's numbers themselves are never asserted here."""

from __future__ import annotations

import asyncio
import math

from bench.harness import percentile
from bench.live_pages import (
    TARGET_N,
    Activation,
    RunResult,
    latency_summary,
    match_updates,
    targets,
)
from bench.tabs import HYDRATE_AND_LOAD, Tab, TabSpec, boot_event, compiled_state, connect_auth, find_var

PROFILE = "reflex___state____state.referral_app___state___base____session_state.referral_app___state___profile____profile_state"


def test_a_var_is_found_under_the_suffixed_name_reflex_sends():
    delta = {"reflex___state____state": {"is_hydrated_rx_state_": True},
             PROFILE: {"invited_count_rx_state_": 3, "referral_summary": "3 people"}}
    assert find_var(delta, "invited_count") == (True, 3)
    assert find_var(delta, "referral_summary") == (True, "3 people")
    assert find_var(delta, "phone_number") == (False, None)
    assert find_var(None, "invited_count") == (False, None)


def test_the_boot_event_hydrates_and_loads_the_profile_page():
    event = boot_event()
    assert event["name"] == HYDRATE_AND_LOAD == "reflex___state____state.hydrate_and_load"
    assert event["router_data"] == {"pathname": "/profile", "asPath": "/profile"}


def test_the_first_connect_sends_the_built_frontends_state_hashes_and_schema(tmp_path):
    assert compiled_state(tmp_path) is None
    assert connect_auth(None) == {"event": boot_event()}
    (tmp_path / "utils").mkdir()
    (tmp_path / "utils" / "context.jsx").write_text(
        'import x from "y"\n'
        'export const initialStateHashes = ["4dab47363d9803e2", "bf21a9e8fbc5a384"]\n'
        'export const stateSchema = "0f2ec362862a46ee"\n'
    )
    compiled = compiled_state(tmp_path)
    auth = connect_auth(compiled)
    assert auth["state_schema"] == "0f2ec362862a46ee"
    assert auth["event"]["payload"] == {"hashes": ["4dab47363d9803e2", "bf21a9e8fbc5a384"]}
    assert auth["event"]["name"] == HYDRATE_AND_LOAD


def test_a_tab_reports_only_new_counts_and_only_once_the_page_has_loaded():
    heard = []

    async def scenario():
        tab = Tab("http://127.0.0.1:1", TabSpec(7, "token"), lambda *args: heard.append(args[:2]))
        await tab._on_update({"delta": {PROFILE: {"invited_count_rx_state_": 0, "loaded_rx_state_": False}}})
        assert not tab.loaded.is_set()
        await tab._on_update({"delta": {PROFILE: {"invited_count_rx_state_": 2, "loaded_rx_state_": True}}})
        assert tab.loaded.is_set()
        await tab._on_update({"delta": {PROFILE: {"invited_count_rx_state_": 2}}})  # no change
        await tab._on_update({"delta": {PROFILE: {"activating_rx_state_": False}}})  # another var
        await tab._on_update({"delta": {PROFILE: {"invited_count_rx_state_": 3}}})
        await tab._on_update({"events": []})

    asyncio.run(scenario())
    assert heard == [(7, 3)]


def test_each_activation_is_matched_to_the_first_update_that_shows_it():
    activations = [
        Activation(owner_id=1, sent=10.0, answered=10.1, status=200, expected=1),
        Activation(owner_id=2, sent=11.0, answered=11.2, status=200, expected=5),
        Activation(owner_id=3, sent=12.0, answered=12.1, status=200, expected=1),  # never shown
        Activation(owner_id=4, sent=13.0, answered=13.1, status=200, expected=1),  # shown too late
        Activation(owner_id=5, sent=14.0, answered=14.1, status=400),  # refused: not counted
        Activation(owner_id=1, sent=30.0, answered=30.1, status=200, expected=2),
    ]
    updates = {
        1: [(1, 10.4), (2, 30.6)],
        2: [(5, 9.0), (4, 11.5), (5, 11.15), (6, 13.0)],  # the (5, 9.0) came before the request
        4: [(1, 25.0)],
    }
    latencies, missed = match_updates(activations, updates, timeout=10)
    assert [round(x, 3) for x in latencies] == [0.3, -0.05, 0.5]
    assert missed == 2


def test_the_summary_gives_percentiles_of_what_arrived():
    latencies = [i / 100 for i in range(1, 101)]  # 0.01 .. 1.00
    summary = latency_summary(latencies, missed=3)
    assert summary["received"] == 100 and summary["missed"] == 3
    assert math.isclose(summary["p50"], 0.505) and math.isclose(summary["p99"], 0.9901)
    assert summary["max"] == 1.0
    assert percentile([0.2], 95) == 0.2
    assert latency_summary([], missed=4) == {"received": 0, "missed": 4}


def _run(n: int, p95: float, p99: float, missed: int, redis_clients: int, rss_mb: list[float],
         subscribers: int = 2) -> RunResult:
    snap = {"worker_rss_kb": {i: mb * 1024 for i, mb in enumerate(rss_mb)}, "worker_fds": {},
            "redis": {"db_clients": redis_clients, "db_subscribers": subscribers, "connected_clients": 0,
                      "used_memory": 0}}
    return RunResult(n, opened=n, latency={"received": 10, "missed": missed, "p50": 0.1, "p95": p95, "p99": p99,
                                           "max": p99}, rest=snap, after=snap)


def test_targets_are_judged_from_the_measured_values():
    good = [_run(1_000, 0.1, 0.2, 0, 60, [200, 190]), _run(TARGET_N, 0.5, 1.5, 0, 70, [330, 300])]
    assert [ok for *_, ok in targets(good)] == [True, True, True, True]

    slow = [_run(1_000, 0.1, 0.2, 0, 60, [200]), _run(TARGET_N, 1.2, 1.5, 0, 60, [200])]
    assert targets(slow)[0][3] is False
    lost = [_run(1_000, 0.1, 0.2, 0, 60, [200]), _run(TARGET_N, 0.2, 0.3, 1, 60, [200])]
    assert targets(lost)[0][3] is False
    per_tab = [_run(1_000, 0.1, 0.2, 0, 1_064, [200], subscribers=1_004),
               _run(TARGET_N, 0.2, 0.3, 0, 5_064, [200], subscribers=5_004)]
    assert [ok for *_, ok in targets(per_tab)][1:3] == [False, False]
    pool_grew = [_run(1_000, 0.1, 0.2, 0, 60, [200]), _run(TARGET_N, 0.2, 0.3, 0, 80, [200])]
    assert [ok for *_, ok in targets(pool_grew)][1:3] == [True, False]
    heavy = [_run(1_000, 0.1, 0.2, 0, 60, [200]), _run(TARGET_N, 0.2, 0.3, 0, 60, [351])]
    assert targets(heavy)[3][3] is False


def test_a_target_not_measured_is_said_so():
    quick = [_run(100, 0.1, 0.2, 0, 60, [200]), _run(1_000, 0.1, 0.2, 0, 61, [210])]
    rows = targets(quick)
    assert rows[0][3] is None and rows[3][3] is None
    assert rows[1][3] is True and rows[2][3] is True
    assert targets([])[1][3] is None
