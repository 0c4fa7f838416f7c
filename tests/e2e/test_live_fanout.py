"""Live updates on two workers sharing Redis, with many open profile tabs (issue 14).

The app is started by scripts/run.sh with ``WORKERS=2`` and ``REFLEX_REDIS_URL``. Each
tab is a raw client of the page's websocket (tests/e2e/reflex_socket.py) speaking what a
browser tab sends: it connects with the person's session cookie and hydrates ``/profile``,
which starts the page's live-update watcher. Activations go through the REST API, so they
are answered by either worker, whichever holds the owner's tab.

- Every activation reaches exactly its owner's tabs (two tabs of one person both), and no
  other tab hears anything.
- Redis: one pattern subscription per worker, whatever the number of tabs, and the
  worker's connections stay within the pool caps while 120 tabs connect at once.
- A tab that reconnects with the same client token (a new websocket) gets live updates again.
- Tabs that go away abruptly (the TCP connection closed, no goodbye) leave no subscriber:
  the ``referral_live_subscribers`` gauge of each worker and the subscription go to zero.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from prometheus_client.mmap_dict import MmapedDict
from reflex.state import State

from referral_app.domain.phones import mask_phone
from referral_app.infra import live
from referral_app.infra.cookies import session_binding
from referral_app.infra.framework.reflex_state import client_storage_key
from referral_app.settings import settings
from referral_app.state.base import SessionState
from tests.conftest import ROOT
from tests.e2e.conftest import RunningApp
from tests.e2e.reflex_socket import EventSocket
from tests.e2e.test_journey import new_phone
from tests.e2e.test_recovery import api_sign_in

REDIS_DB = 12  # a database of the machine's Redis of this test's own
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
FEED_CLIENT = f"referral_app:{REDIS_DB}:referrals"  # the live feed's channels and client name
WORKERS = 2
PEOPLE = 90  # each with a tab open on the profile; SECOND_TABS of them with two
SECOND_TABS = 30
ACTIVATED = 40  # people whose code someone enters while the tabs sit
HYDRATE = f"{State.get_full_name()}.hydrate_and_load"
EVENT_PREFIX = "42/_event,"


@pytest.fixture(scope="module")
def two_workers(app_database, tmp_path_factory):
    app = RunningApp(
        app_database,
        tmp_path_factory.mktemp("fanout") / "app.log",
        # Every tab comes from 127.0.0.1: no per-address limit on sockets or sends.
        {"REFLEX_REDIS_URL": REDIS_URL, "WORKERS": str(WORKERS), "RATE_LIMITS_ENABLED": "false", "SMS_DELAY_SECONDS": "0",
         "MAX_WEBSOCKETS_PER_CLIENT": "0"},
    )
    app.start()
    yield app
    app.stop()


class Tab:
    """One open profile tab: its websocket, read by a thread of its own (which answers the
    server's pings), noting the referral counts and lists the server sends it."""

    def __init__(self, app: RunningApp, session_token: str, owner: str, client_token: str | None = None) -> None:
        self.owner = owner
        self.socket = EventSocket(
            app.port, origin=app.url, cookie=f"referral_session={session_token}", token=client_token
        )
        self.counts: list[int] = []
        self.shown: list[str] = []  # the phone numbers shown in the list, as sent
        self.closed = False
        # With the binding the page keeps in localStorage for its cookie (referral_app/infra/cookies.py).
        self.socket.emit(HYDRATE, {"vars": {client_storage_key(SessionState, "session_binding"):
                                            session_binding(session_token)}}, path="/profile")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while not self.closed:
            message = self.socket.receive(1)
            if message == "2":  # engine.io ping
                try:
                    self.socket.send("3")
                except OSError:
                    return
            elif message and message.startswith(EVENT_PREFIX):
                _name, update = json.loads(message[len(EVENT_PREFIX):])
                for state, changes in update.get("delta", {}).items():
                    if state.endswith("profile_state") and "invited_count_rx_state_" in changes:
                        self.counts.append(changes["invited_count_rx_state_"])
                        self.shown.extend(row["phone_number"] for row in changes.get("referrals_rx_state_", []))

    def drop(self) -> None:
        """Gone without a goodbye: no websocket close, no Socket.IO disconnect, just the TCP close."""
        self.closed = True
        self.socket.sock.close()
        self.reader.join(5)


def live_subscribers(app: RunningApp) -> dict[str, float]:
    """Each worker's ``referral_live_subscribers``, from its own metrics file."""
    values = {}
    for path in (ROOT / ".run" / str(app.process.pid) / "metrics").glob("gauge_livesum_*.db"):
        for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[1] == "referral_live_subscribers":
                values[path.stem] = value
    return values


def scraped_subscribers(app: RunningApp) -> float:
    with urllib.request.urlopen(app.url + "/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("referral_live_subscribers "):
                return float(line.split()[1])
    raise AssertionError("no referral_live_subscribers in /metrics")


def wait_until(check, within: float, what: str):
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def redis_clients() -> list[dict]:
    return [client for client in redis.Redis.from_url(REDIS_URL).client_list() if client["db"] == str(REDIS_DB)]


def feed_clients() -> list[dict]:
    return [client for client in redis_clients() if client.get("name") == FEED_CLIENT]


def invite_code(app: RunningApp, token: str) -> str:
    request = urllib.request.Request(app.url + "/api/v1/profile/me/", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["invite_code"]


def activate(app: RunningApp, code: str) -> str:
    """Someone new enters ``code`` through the REST API; returns their phone number."""
    phone = new_phone()
    request = urllib.request.Request(
        app.url + "/api/profile/activate_invite",
        data=json.dumps({"invite_code": code}).encode(),
        headers={"Authorization": f"Bearer {api_sign_in(app.url, phone)}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.status == 200
    return phone


def test_every_activation_reaches_exactly_its_owners_tabs_and_closed_tabs_leave_nothing(two_workers):
    app = two_workers
    with ThreadPoolExecutor(16) as pool:
        phones = [new_phone() for _ in range(PEOPLE)]
        tokens = dict(zip(phones, pool.map(lambda phone: api_sign_in(app.url, phone), phones)))
        codes = dict(zip(phones, pool.map(lambda phone: invite_code(app, tokens[phone]), phones)))

    # 120 tabs connect in a burst (30 at a time, as after a deploy); both workers get some.
    owners = phones + phones[:SECOND_TABS]
    peak_connections = 0
    with ThreadPoolExecutor(30) as pool:
        tabs = list(pool.map(lambda phone: Tab(app, tokens[phone], phone), owners))
        deadline = time.monotonic() + 60
        while scraped_subscribers(app) < len(tabs):
            peak_connections = max(peak_connections, len(redis_clients()))
            assert time.monotonic() < deadline, f"{scraped_subscribers(app)} of {len(tabs)} tabs subscribed"
            time.sleep(0.2)
    per_worker = live_subscribers(app)
    print(f"tabs by worker: {per_worker}; Redis connections at most {peak_connections} while they connected")
    assert sum(per_worker.values()) == len(tabs)
    assert len([value for value in per_worker.values() if value > 0]) == WORKERS, per_worker
    # One pattern subscription per worker for all its tabs; few connections of the feed's own,
    # and Reflex's within their caps (REFLEX_REDIS_MAX_CONNECTIONS per pool, two pools).
    listening = [client for client in feed_clients() if int(client["psub"])]
    assert len(listening) == WORKERS and all(client["psub"] == "1" and client["sub"] == "0" for client in listening)
    assert len(feed_clients()) <= WORKERS * live.REDIS_CONNECTIONS
    cap = WORKERS * (2 * settings.redis_max_connections + live.REDIS_CONNECTIONS) + 1  # + this test's client
    assert max(peak_connections, len(redis_clients())) <= cap

    time.sleep(0.5)  # what the loads sent has arrived
    for tab in tabs:
        tab.counts.clear()
        tab.shown.clear()
    activated = phones[:15] + phones[SECOND_TABS : SECOND_TABS + ACTIVATED - 15]  # 15 with two tabs
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        activators = dict(zip(activated, pool.map(lambda phone: activate(app, codes[phone]), activated)))
    owner_tabs = [tab for tab in tabs if tab.owner in activators]
    assert len(owner_tabs) == ACTIVATED + 15
    wait_until(lambda: all(tab.counts for tab in owner_tabs), 20, "an owner's tab did not hear its activation")
    print(f"{ACTIVATED} activations reached {len(owner_tabs)} tabs within {time.monotonic() - started:.2f} s")
    time.sleep(1)  # time for a wrong delivery to show
    for tab in tabs:
        if tab.owner in activators:
            assert tab.counts == [1] and tab.shown == [mask_phone(activators[tab.owner])], (tab.owner, tab.counts)
        else:
            assert tab.counts == [], (tab.owner, tab.counts)

    # A tab that loses its connection and comes back with the same client token hears again.
    returning = next(tab for tab in owner_tabs if tab.owner in phones[SECOND_TABS:])
    returning.drop()
    wait_until(lambda: scraped_subscribers(app) == len(tabs) - 1, 15, "the dropped tab is still subscribed")
    again = Tab(app, tokens[returning.owner], returning.owner, client_token=returning.socket.token)
    tabs[tabs.index(returning)] = again
    wait_until(lambda: scraped_subscribers(app) == len(tabs), 15, "the returning tab did not subscribe")
    time.sleep(0.5)
    again.counts.clear()
    activate(app, codes[again.owner])
    wait_until(lambda: again.counts, 10, "the returning tab did not hear")
    time.sleep(0.5)
    assert again.counts == [2]

    # Every tab goes away abruptly: nothing stays subscribed, on either worker or in Redis.
    for tab in tabs:
        tab.drop()
    wait_until(lambda: scraped_subscribers(app) == 0, 20, f"subscribers left: {live_subscribers(app)}")
    assert set(live_subscribers(app).values()) == {0}
    wait_until(lambda: not any(int(client["psub"]) for client in feed_clients()), 10, "a subscription stayed")
    assert len(feed_clients()) <= WORKERS * live.REDIS_CONNECTIONS
    log = app.log.read_text(errors="replace")
    assert "Traceback" not in log and "No connection available" not in log
