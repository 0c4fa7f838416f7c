"""Timeouts against slow clients reach the server Reflex starts, and the body guard answers 408.

The running app is measured in tests/e2e/test_slow_clients.py."""

from __future__ import annotations

import asyncio
import inspect
import json

from referral_app.infra.asgi import BodyWatch
from referral_app.infra.server import granian_http1_settings, use_http_timeouts
from referral_app.settings import settings


def test_granian_gets_the_header_timeout(monkeypatch):
    import granian.server

    import rxconfig  # noqa: F401  (installs the timeouts, as for every start)

    monkeypatch.setattr(settings, "http_header_timeout_seconds", 7.5)
    server = granian.server.Server(target="referral_app.referral_app:app", factory=True)
    assert server.http1_settings.header_read_timeout == 7500
    assert granian_http1_settings().keep_alive is True
    use_http_timeouts()  # a second call changes nothing
    assert granian.server.Server.__mro__[1].__name__ in ("MPServer", "MTServer")


def test_granian_speaks_http1_only_and_replaces_dead_workers(monkeypatch):
    """Silent connections are closed only in HTTP/1 mode; a dead worker is replaced, and a
    stop ends within WORKER_STOP_TIMEOUT_SECONDS (infra/server.py; tests/faults/ shows both)."""
    import granian.server
    from granian.constants import HTTPModes

    import rxconfig  # noqa: F401

    monkeypatch.setattr(settings, "worker_stop_timeout_seconds", 12)
    server = granian.server.Server(target="referral_app.referral_app:app", factory=True)
    assert server.http == HTTPModes.http1
    assert server.respawn_failed_workers is True
    assert server.workers_kill_timeout == 12
    # What the caller gives wins.
    assert granian.server.Server(target="x:y", http=HTTPModes.auto).http == HTTPModes.auto


def test_granian_still_respawns_failed_workers_the_way_we_rely_on():
    """Granian's main loop replaces an unexpected exit only with ``respawn_failed_workers``
    (else it shuts down); an upgrade that changes this must be looked at again."""
    from granian.server.common import AbstractServer

    loop = inspect.getsource(AbstractServer._serve_loop)
    assert "if not self.respawn_failed_workers:" in loop and "self._respawn_workers(workers" in loop


def test_reflex_still_starts_granian_through_granian_server():
    """If a Reflex upgrade starts Granian another way, the header timeout would silently be lost."""
    from reflex.utils import exec as reflex_exec

    for launcher in (reflex_exec.run_granian_backend_prod, reflex_exec.run_granian_backend):
        assert "from granian.server import Server as Granian" in inspect.getsource(launcher)


def run_guarded(receive_messages, delay: float) -> list[dict]:
    """The guard in front of an app that reads the whole body; the client sends the messages
    ``delay`` seconds apart."""
    sent: list[dict] = []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main():
        queue = list(receive_messages)

        async def receive():
            await asyncio.sleep(delay)
            return queue.pop(0) if queue else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/api/v1/x/", "headers": []}
        await BodyWatch(app)(scope, receive, send)

    asyncio.run(main())
    return sent


def test_a_slow_body_gets_408_and_connection_close(monkeypatch):
    monkeypatch.setattr(settings, "http_body_timeout_seconds", 0.3)
    chunks = [{"type": "http.request", "body": b"x", "more_body": True}] * 20
    sent = run_guarded(chunks, delay=0.1)
    start = sent[0]
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert json.loads(sent[1]["body"])["code"] == "request.timeout"


def test_a_body_in_time_is_served(monkeypatch):
    monkeypatch.setattr(settings, "http_body_timeout_seconds", 1)
    chunks = [{"type": "http.request", "body": b"x", "more_body": True}] * 3 + [
        {"type": "http.request", "body": b"x", "more_body": False}]
    sent = run_guarded(chunks, delay=0.05)
    assert sent[0]["status"] == 200


def test_a_get_with_a_body_is_timed_and_one_without_passes_untouched(monkeypatch):
    """The body watch skips only a GET/HEAD whose head announces no body (RFC 9112 §6.3)."""
    monkeypatch.setattr(settings, "http_body_timeout_seconds", 0.2)
    seen, sent = [], []

    async def app(scope, receive, send):
        seen.append(receive)
        while (await receive()).get("more_body"):
            pass

    async def slow_receive():
        await asyncio.sleep(0.1)
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(message):
        sent.append(message)

    async def main():
        with_body = {"type": "http", "method": "GET", "path": "/", "headers": [(b"Content-Length", b"20")]}
        await BodyWatch(app)(with_body, slow_receive, send)
        assert seen[-1] is not slow_receive and sent[0]["status"] == 408
        sent.clear()

        async def no_body():
            return {"type": "http.request", "body": b"", "more_body": False}

        await BodyWatch(app)({"type": "http", "method": "HEAD", "path": "/", "headers": []}, no_body, send)
        assert seen[-1] is no_body and sent == []

    asyncio.run(main())
