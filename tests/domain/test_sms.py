"""SMS senders: the demo sender (simulated gateway delay that never blocks) and the webhook sender.

The webhook sender is tested against a real HTTP server on 127.0.0.1 that this module
starts in a thread and scripts per test: answer 200, 500, 4xx, or hang.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import time
from collections import deque
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from referral_app.domain import auth, codes
from referral_app.domain import sms as sms_module
from referral_app.domain.clock import utcnow
from referral_app.domain.errors import RateLimited, Unavailable, WrongCode
from referral_app.domain.sms import DemoSmsSender, WebhookSmsSender, make_sms_sender
from referral_app.settings import settings
from tests.domain.helpers import TEST_IP, T0, phone, rows_of

TEXT = "Your sign-in code: 4321. It is valid for 5 minutes."


@pytest.fixture
def all_logs(caplog, monkeypatch):
    """Capture every log record at any level.

    The test run applies the migrations in-process, and Alembic's ``fileConfig`` disables
    every logger that existed by then (the app's included), so a test that looks for a
    code in the logs would pass without seeing any. Re-enable them for the test.
    """
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and logger.disabled:
            monkeypatch.setattr(logger, "disabled", False)
    caplog.set_level(logging.DEBUG)
    return caplog


def logged(caplog, code: str) -> bool:
    """Whether any log message contains ``code`` as a number of its own (not inside a port, say)."""
    return any(re.search(rf"(?<!\d){code}(?!\d)", record.getMessage()) for record in caplog.records)


# --- demo sender --------------------------------------------------------------------------


class TimedOutbox(deque):
    """An outbox that notes when each message arrives."""

    def __init__(self, events: list, maxlen: int = 100) -> None:
        super().__init__(maxlen=maxlen)
        self.events = events

    def append(self, item) -> None:
        self.events.append(("done", item[0], time.monotonic()))
        super().append(item)


@pytest.fixture
def delays(monkeypatch):
    """Records each delay the demo sender draws (the moment its send starts waiting)."""
    events: list[tuple] = []

    def uniform(low: float, high: float) -> float:
        events.append(("waiting", (low, high), time.monotonic()))
        return (low + high) / 2

    monkeypatch.setattr(sms_module, "random", SimpleNamespace(uniform=uniform))
    return events


def test_demo_sender_keeps_the_messages(monkeypatch):
    monkeypatch.setattr(settings, "sms_delay_seconds", (0.0, 0.0))
    sender = DemoSmsSender(keep=2)
    for n in range(3):
        asyncio.run(sender.send(phone(n), f"text {n}"))
    assert list(sender.outbox) == [(phone(1), "text 1"), (phone(2), "text 2")]  # only the latest `keep`


def test_send_code_hands_the_code_to_the_sender(db, sms):
    issued = auth.request_code(db, phone(1), TEST_IP, now=T0)
    asyncio.run(auth.send_code(issued, sms))
    [(number, text)] = sms.outbox
    assert number == phone(1)
    assert issued.code in text and "5 minutes" in text


def test_demo_delay_never_blocks_other_work(delays):
    """Two sends with a 0.3 s delay, run together, wait at the same time, not one after the other."""
    sender = DemoSmsSender(delay_seconds=(0.3, 0.3))
    sender.outbox = TimedOutbox(delays)
    probe: dict = {}

    async def meanwhile(start: float) -> None:
        await asyncio.sleep(0.05)
        probe["woke_after"] = time.monotonic() - start
        probe["outbox"] = list(sender.outbox)

    async def scenario() -> float:
        start = time.monotonic()
        await asyncio.gather(sender.send(phone(1), "one"), sender.send(phone(2), "two"), meanwhile(start))
        return time.monotonic() - start

    elapsed = asyncio.run(scenario())

    kinds = [kind for kind, *_ in delays]
    assert kinds == ["waiting", "waiting", "done", "done"]  # both were waiting before either finished
    assert delays[0][1] == (0.3, 0.3)
    assert probe["outbox"] == [] and probe["woke_after"] < 0.25  # the loop ran other work meanwhile
    assert sorted(sender.outbox) == [(phone(1), "one"), (phone(2), "two")]
    assert 0.25 <= elapsed < 0.55  # the delay happened once, not twice (0.6 s)


def test_demo_delay_comes_from_the_settings(delays, monkeypatch):
    monkeypatch.setattr(settings, "sms_delay_seconds", (0.01, 0.02))
    asyncio.run(DemoSmsSender().send(phone(1), TEXT))
    assert [event[1] for event in delays if event[0] == "waiting"] == [(0.01, 0.02)]

    delays.clear()
    monkeypatch.setattr(settings, "sms_delay_seconds", (0.0, 0.0))
    asyncio.run(DemoSmsSender().send(phone(1), TEXT))
    assert [event for event in delays if event[0] == "waiting"] == []  # no delay: no wait at all


def test_the_code_is_not_logged_outside_demo_mode(db, sms, all_logs, monkeypatch):
    monkeypatch.setattr(settings, "demo_mode", False)
    issued = auth.request_code(db, phone(1), TEST_IP, now=T0)
    asyncio.run(auth.send_code(issued, sms))
    assert issued.code in sms.outbox[-1][1]  # the message itself has it
    assert not logged(all_logs, issued.code)


def test_the_demo_sender_logs_the_code_in_demo_mode(db, sms, all_logs, monkeypatch):
    """The counterpart of the test above: shows that it would see a logged code."""
    monkeypatch.setattr(settings, "demo_mode", True)
    asyncio.run(sms.send(phone(1), TEXT))
    assert logged(all_logs, "4321")


# --- webhook sender -----------------------------------------------------------------------


class Gateway:
    """A scripted SMS gateway: each POST takes the next answer from ``script`` (default 200).

    An answer is a status code, ``"hang"`` (no answer until the test ends) or
    ``("slow", seconds)`` (200 after that long).
    """

    def __init__(self) -> None:
        self.script: list[int | str] = []
        self.requests: list[dict] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with gateway._lock:
                    gateway.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    answer = gateway.script.pop(0) if gateway.script else 200
                if answer == "hang":
                    gateway.release.wait(timeout=10)
                    return
                if isinstance(answer, tuple):  # a slow gateway that accepts in the end
                    time.sleep(answer[1])
                    answer = 200
                payload = b'{"ok": true}'
                self.send_response(answer)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:  # keep the test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def sender(self, timeout: float = 2.0, retries: int = 2) -> WebhookSmsSender:
        return WebhookSmsSender(self.url, timeout_seconds=timeout, retries=retries, backoff_seconds=0.01)


@pytest.fixture
def gateway(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):  # talk to 127.0.0.1 directly
        monkeypatch.delenv(name, raising=False)
    server = Gateway()
    server.thread.start()
    yield server
    server.release.set()
    server.server.shutdown()
    server.server.server_close()
    server.thread.join(timeout=5)


def test_webhook_posts_the_message_as_json(gateway):
    asyncio.run(gateway.sender().send(phone(1), TEXT))

    [request] = gateway.requests
    assert request["path"] == "/sms"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {"phone": phone(1), "text": TEXT}


def test_webhook_retries_after_server_errors(gateway):
    gateway.script = [500, 503]
    asyncio.run(gateway.sender(retries=2).send(phone(1), TEXT))

    assert len(gateway.requests) == 3
    assert {request["body"] for request in gateway.requests} == {gateway.requests[0]["body"]}


def test_webhook_gives_up_when_the_retries_are_exhausted(gateway, all_logs):
    gateway.script = [500] * 10
    with pytest.raises(Unavailable):
        asyncio.run(gateway.sender(retries=2).send(phone(1), TEXT))

    assert len(gateway.requests) == 3  # the first try and two retries
    assert not logged(all_logs, "4321")


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_webhook_does_not_retry_a_refusal(gateway, status):
    gateway.script = [status]
    with pytest.raises(Unavailable):
        asyncio.run(gateway.sender(retries=2).send(phone(1), TEXT))

    assert len(gateway.requests) == 1


def test_webhook_gives_up_on_a_gateway_that_does_not_answer(gateway):
    gateway.script = ["hang"] * 10
    start = time.monotonic()
    with pytest.raises(Unavailable):
        asyncio.run(gateway.sender(timeout=0.2, retries=1).send(phone(1), TEXT))

    assert time.monotonic() - start < 3  # two timeouts of 0.2 s, not the 10 s the gateway hangs
    assert len(gateway.requests) == 2


def test_webhook_gives_up_when_nothing_listens():
    with socket.socket() as probe:  # a port that was free a moment ago and is closed now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = WebhookSmsSender(f"http://127.0.0.1:{port}/sms", timeout_seconds=0.5, retries=1, backoff_seconds=0.01)
    with pytest.raises(Unavailable):
        asyncio.run(sender.send(phone(1), TEXT))


def test_make_sms_sender_picks_the_webhook_when_a_url_is_set(monkeypatch):
    assert isinstance(make_sms_sender(), DemoSmsSender)  # the test settings have no URL

    monkeypatch.setattr(settings, "sms_webhook_url", "http://gateway.invalid/send")
    monkeypatch.setattr(settings, "sms_webhook_timeout_seconds", 1.5)
    monkeypatch.setattr(settings, "sms_webhook_retries", 4)
    sender = make_sms_sender()
    assert isinstance(sender, WebhookSmsSender)
    assert (sender.url, sender.timeout_seconds, sender.retries) == ("http://gateway.invalid/send", 1.5, 4)


# --- through the API ----------------------------------------------------------------------


@pytest.fixture
def api_with_gateway(db, gateway, monkeypatch):
    """The API with demo mode off, sending its codes to the local gateway."""
    from referral_app.domain import sms as sms_module
    from referral_app.referral_app import api

    monkeypatch.setattr(settings, "demo_mode", False)
    monkeypatch.setattr(settings, "allowed_hosts", ("testserver",))  # production answers configured hosts only
    monkeypatch.setattr(sms_module, "sms_sender", gateway.sender(timeout=1.0, retries=1))
    with TestClient(api) as client:
        yield client


def test_outside_demo_mode_the_code_goes_only_to_the_gateway(api_with_gateway, gateway, all_logs):
    response = api_with_gateway.post("/api/v1/auth/request_code/", json={"phone_number": phone(1)})

    assert response.status_code == 200, response.text
    assert "confirmation_code" not in response.json()
    [request] = gateway.requests
    message = json.loads(request["body"])
    assert message["phone"] == phone(1)
    [code] = re.findall(r"\b\d{4}\b", message["text"])
    assert code not in response.text and not logged(all_logs, code)
    signed_in = api_with_gateway.post(
        "/api/v1/auth/auth_code/", json={"phone_number": phone(1), "confirmation_code": code}
    )
    assert signed_in.status_code == 200, signed_in.text


def test_a_failing_gateway_is_a_503_in_the_api_format(api_with_gateway, gateway):
    gateway.script = [500] * 10
    response = api_with_gateway.post("/api/v1/auth/request_code/", json={"phone_number": phone(1)})

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "sms.unavailable" and response.json()["message"]
    assert len(gateway.requests) == 2


# --- a slow or failing gateway: the deadline and the code's lifetime (SPEC §3, §16) -----------


def _closed_port_sender() -> WebhookSmsSender:
    """A webhook sender to a port where nothing listens: every send fails for real."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return WebhookSmsSender(f"http://127.0.0.1:{port}/sms", timeout_seconds=0.5, retries=0)


def test_the_lifetime_counts_from_the_gateways_acceptance(db, monkeypatch):
    """A simulated gateway that takes 3 s, a 30 s lifetime: the code lives 30 s from the
    acceptance, not from the request (which would leave 27 s)."""
    monkeypatch.setattr(settings, "code_ttl_seconds", 30)
    issued = auth.request_code(db, phone(1), TEST_IP)
    accepted_at = asyncio.run(auth.send_code(issued, DemoSmsSender(delay_seconds=(3.0, 3.0))))
    returned = utcnow()
    accepted = auth.code_accepted(db, issued, accepted_at)

    assert (accepted_at - issued.issued_at).total_seconds() >= 2.9
    assert accepted.expires_at == accepted_at + timedelta(seconds=30)
    with pytest.raises(WrongCode):  # not a moment longer than promised
        auth.sign_in(db, phone(1), issued.code, now=returned + timedelta(seconds=30))
    user = auth.sign_in(db, phone(1), issued.code, now=returned + timedelta(seconds=29))
    assert user.phone_number == phone(1)


def test_a_send_past_its_deadline_fails_within_the_deadline(gateway, monkeypatch):
    """The sender alone would wait 3 x 5 s; the deadline ends the send after 0.5 s."""
    gateway.script = ["hang"] * 3
    monkeypatch.setattr(settings, "sms_send_timeout_seconds", 0.5)
    issued = codes.IssuedCode(phone(1), "4321", T0, 300, T0)
    start = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        asyncio.run(auth.send_code(issued, gateway.sender(timeout=5.0, retries=2)))
    assert time.monotonic() - start < 3
    assert caught.value.retry_after > 0


def test_a_failed_send_leaves_no_code_and_frees_only_the_cooldown(db, send_limits, monkeypatch):
    """The code is gone and the person may ask again at once; the failed sends still count
    in the 10-minute window (a send that timed out may have been delivered and billed)."""
    monkeypatch.setattr(settings, "sends_per_phone_10min", 2)
    sender = _closed_port_sender()
    for attempt in range(2):
        issued = auth.request_code(db, phone(1), TEST_IP)  # never refused by the cooldown
        with pytest.raises(Unavailable):
            asyncio.run(auth.send_code(issued, sender))
        auth.code_not_sent(db, issued)
        assert rows_of(db, "confirmation_codes") == []
        with pytest.raises(WrongCode):
            auth.sign_in(db, phone(1), issued.code)
    assert len(rows_of(db, "code_sends")) == 2
    with pytest.raises(RateLimited) as caught:
        auth.request_code(db, phone(1), TEST_IP)
    assert caught.value.retry_after > settings.send_cooldown_seconds  # the 10-minute window, not the cooldown


@pytest.fixture
def slow_api(db, gateway, monkeypatch):
    """The API with demo mode off and a gateway sender with room for a slow answer."""
    from referral_app.domain import sms as sms_module
    from referral_app.referral_app import api

    monkeypatch.setattr(settings, "demo_mode", False)
    monkeypatch.setattr(settings, "allowed_hosts", ("testserver",))  # production answers configured hosts only
    monkeypatch.setattr(sms_module, "sms_sender", gateway.sender(timeout=10.0, retries=0))
    with TestClient(api) as client:
        yield client


def test_expires_in_is_exact_with_a_slow_gateway(slow_api, gateway, db, monkeypatch):
    """SPEC §3: with a gateway that takes 4 s and a 30 s lifetime, the code still works
    expires_in - 3 s after the answer (counted from the request it had died 1 s before)."""
    monkeypatch.setattr(settings, "code_ttl_seconds", 30)
    gateway.script = [("slow", 4.0)]
    response = slow_api.post("/api/v1/auth/request_code/", json={"phone_number": phone(1)})
    answered = utcnow()

    assert response.status_code == 200, response.text
    expires_in = response.json()["expires_in"]
    assert expires_in == 30
    [code] = re.findall(r"\b\d{4}\b", json.loads(gateway.requests[0]["body"])["text"])
    with pytest.raises(WrongCode):  # and no later than it said
        auth.sign_in(db, phone(1), code, now=answered + timedelta(seconds=expires_in))
    user = auth.sign_in(db, phone(1), code, now=answered + timedelta(seconds=expires_in - 3))
    assert user.phone_number == phone(1)


def test_a_failing_gateway_is_a_503_with_retry_after_and_no_code(slow_api, gateway, db, send_limits):
    gateway.script = [500]
    response = slow_api.post("/api/v1/auth/request_code/", json={"phone_number": phone(1)})

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "sms.unavailable" and response.json()["message"]
    assert int(response.headers["Retry-After"]) > 0
    assert rows_of(db, "confirmation_codes") == []  # nothing that could sign anyone in
    # The failed send holds no cooldown: the next try goes out at once and works.
    again = slow_api.post("/api/v1/auth/request_code/", json={"phone_number": phone(1)})
    assert again.status_code == 200, again.text
    [code] = re.findall(r"\b\d{4}\b", json.loads(gateway.requests[-1]["body"])["text"])
    signed_in = slow_api.post("/api/v1/auth/auth_code/", json={"phone_number": phone(1), "confirmation_code": code})
    assert signed_in.status_code == 200, signed_in.text
    assert len(rows_of(db, "code_sends")) == 2  # both still count in the wider windows


def test_a_gateway_past_the_deadline_is_a_503_in_time(slow_api, gateway, db, monkeypatch):
    """The gateway never answers; SMS_SEND_TIMEOUT_SECONDS ends the request, not the gateway."""
    from referral_app.domain import sms as sms_module

    monkeypatch.setattr(sms_module, "sms_sender", gateway.sender(timeout=5.0, retries=2))  # alone: 15 s
    monkeypatch.setattr(settings, "sms_send_timeout_seconds", 1.0)
    gateway.script = ["hang"] * 3
    start = time.monotonic()
    response = slow_api.post("/api/v1/auth/request_code/", json={"phone_number": phone(1)})

    assert time.monotonic() - start < 5
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "sms.unavailable" and int(response.headers["Retry-After"]) > 0
    assert rows_of(db, "confirmation_codes") == []
