"""The body guard answers 408 (the timeouts Granian gets are in tests/framework/test_granian.py).

The running app is measured in tests/e2e/test_slow_clients.py."""

from __future__ import annotations

import asyncio
import json

from referral_app.infra.server import BodyTimeoutMiddleware
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
        await BodyTimeoutMiddleware(app)(scope, receive, send)

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
