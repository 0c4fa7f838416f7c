"""The app as `make run` starts it, two workers on a private Redis: a pickle planted under a
tab's state keys is never unpickled by the app (referral_app/infra/state_mac.py); the tab
gets a fresh page, the app says so in its log and on /metrics."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import pytest
import redis
import reflex as rx

from referral_app.state.login import LoginState
from tests.e2e.conftest import RunningApp
from tests.e2e.reflex_socket import EventSocket
from tests.test_state_mac import REDIS_SERVER, exploit_blob, private_redis

HYDRATE = f"{rx.State.get_full_name()}.hydrate_and_load"
EVENT_PREFIX = "42/_event,"

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server")


@pytest.fixture(scope="module")
def app_on_private_redis(app_database, tmp_path_factory):
    with private_redis() as url:
        app = RunningApp(app_database, tmp_path_factory.mktemp("planted") / "app.log",
                         {"REFLEX_REDIS_URL": url, "WORKERS": "2"})
        app.start()
        try:
            yield app, redis.Redis.from_url(url)
        finally:
            app.stop()


def rejected_on_metrics(app: RunningApp) -> float:
    with urllib.request.urlopen(app.url + "/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith('referral_state_blobs_rejected_total{kind="state"}'):
                return float(line.split()[1])
    return 0.0


def test_a_pickle_planted_in_redis_does_not_run_in_the_app(app_on_private_redis, tmp_path):
    app, client = app_on_private_redis
    marker = tmp_path / "pwned"
    token = str(uuid.uuid4())
    planted = [f"{token}_{cls.get_full_name()}" for cls in (rx.State, LoginState)]
    for key in planted:
        client.set(key, exploit_blob(marker))

    tab = EventSocket(app.port, origin=app.url, token=token)
    try:
        tab.emit(HYDRATE, {}, path="/")
        deadline, deltas = time.monotonic() + 30, []
        while not deltas and time.monotonic() < deadline:
            message = tab.receive(1)
            if message == "2":
                tab.send("3")
            elif message and message.startswith(EVENT_PREFIX):
                deltas.append(json.loads(message[len(EVENT_PREFIX):])[1]["delta"])
    finally:
        tab.close()

    assert not marker.exists()
    assert deltas, "the tab got no page state"
    login = next(changes for state, changes in deltas[0].items() if state.endswith("login_state"))
    assert login["step_rx_state_"] == "phone" and login["phone_number_rx_state_"] == ""  # a fresh page
    # The app writes the tab's state anew (after the event, as it releases the lock), with its MAC.
    def stored() -> dict[str, bytes]:
        keys = [key for key in client.scan_iter(f"{token}_*") if not key.endswith(b"_lock")]
        return {key.decode(): (client.get(key) or b"")[:4] for key in keys}

    deadline = time.monotonic() + 20
    while not all(head == b"RXS1" for head in stored().values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert set(planted) <= set(stored()) and set(stored().values()) == {b"RXS1"}, stored()
    assert rejected_on_metrics(app) >= 2
    assert "without a valid MAC were not unpickled" in app.log.read_text()
