"""The body guard answers 408 (the timeouts Granian gets are in tests/framework/test_granian.py).

The running app is measured in tests/e2e/test_slow_clients.py."""

from __future__ import annotations

import asyncio
import json

from referral_app.infra.asgi import BodyWatch
from referral_app.settings import settings


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
