"""The app as `make run` starts it, two workers on a private Redis: a pickle planted under a
tab's state keys is never unpickled by the app (referral_app/infra/state_mac.py); the tab
gets a fresh page, the app says so in its log and on /metrics."""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid

import pytest
import redis
import reflex as rx

from referral_app.state.login import LoginState
from tests.e2e.conftest import RunningApp
from tests.e2e.reflex_socket import EventSocket
from tests.private_services import REDIS_SERVER, private_redis_url as private_redis
from tests.test_state_mac import exploit_blob

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


def _messages(tab: EventSocket, seconds: float) -> str:
    """Everything the app sent ``tab`` for ``seconds`` (answering its pings), as one text."""
    received, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        message = tab.receive(left)
        if message is None:
            break
        if message == "2":
            tab.send("3")
        received.append(message)
    return "\n".join(received)


def test_a_sealed_state_copied_into_another_tab_shows_that_tab_none_of_its_data(app_on_private_redis, app_db):
    """The MAC does not bind a blob to its key: whoever can write to Redis can copy a signed-in
    tab's sealed states under another tab's keys. That tab (no cookie, or another person's)
    must be shown none of it: by a hydrate (the session check resets the states) nor by an
    event sent without one (those handlers re-check the session, or touch no data)."""
    from referral_app.domain import auth, sessions
    from referral_app.infra.cookies import session_binding
    from referral_app.infra.framework.reflex_state import client_storage_key
    from referral_app.state.base import SessionState
    from referral_app.state.profile import ProfileState
    from tests.e2e.test_journey import new_phone

    app, client = app_on_private_redis
    phone = new_phone()
    issued = auth.request_code(app_db, phone, "127.0.0.1")
    user = auth.sign_in(app_db, phone, issued.code)
    session = sessions.create_session(app_db, user.id)
    app_db.rollback()

    victim = EventSocket(app.port, origin=app.url, cookie=f"referral_session={session}")
    try:
        # With the binding its page keeps in localStorage for the cookie (referral_app/infra/cookies.py).
        binding = {client_storage_key(SessionState, "session_binding"): session_binding(session)}
        victim.emit(HYDRATE, {"vars": binding}, path="/profile")
        seen = _messages(victim, 8)
    finally:
        victim.close()
    assert phone in seen, "the victim's tab did not load the profile"
    codes = re.findall(r'"invite_code_rx_state_":"([^"]+)"', seen)
    assert codes, "the victim's tab got no invite code"
    invite_code = codes[-1]

    stolen = str(uuid.uuid4())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the app writes the states back as it releases the lock
        keys = [key for key in client.scan_iter(f"{victim.token}_*") if not key.endswith(b"_lock")]
        if keys and phone.encode() in b"".join(client.get(key) or b"" for key in keys):
            break
        time.sleep(0.2)
    for key in keys:
        client.set(stolen + key.decode()[len(victim.token):], client.get(key))

    profile = ProfileState.get_full_name()
    for first in ([(f"{profile}.shared", {"outcome": "copied"}), (f"{profile}.load_more", {})], [(HYDRATE, {})]):
        for cookie in (None, "referral_session=not-a-session"):
            attacker = EventSocket(app.port, origin=app.url, cookie=cookie, token=stolen)
            try:
                for name, payload in first:
                    attacker.emit(name, payload, path="/profile")
                shown = _messages(attacker, 5)
            finally:
                attacker.close()
            assert phone not in shown and phone[-7:] not in shown and invite_code not in shown, (first, shown[:2000])
