"""Fixtures for the webhook tests: a real HTTP receiver on a free loopback port, and settings
that switch webhooks on and point them at it."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

SECRET = "whsec_" + base64.b64encode(b"a test signing key of 32 bytes!!").decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """A small HTTP server that records every POST and answers from a script.

    ``answers``: the status codes of the next requests, in order; afterwards ``default``.
    ``stop()`` takes it down (connections are refused) and ``start()`` brings it back on the
    same port. While ``hold`` is clear, requests wait (a receiver that hangs).
    """

    def __init__(self, answers: list[int] | None = None, default: int = 204) -> None:
        self.port = free_port()
        self.answers, self.default = list(answers or []), default
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.hold = threading.Event()
        self.hold.set()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.answers.pop(0) if receiver.answers else receiver.default
                receiver.hold.wait(30)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default backlog (5) refuses a burst of connections

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self) -> list[dict]:
        with self.lock:
            return [r.event for r in self.received]

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.received)} requests arrived, expected {count}")


@pytest.fixture
def receiver():
    server = Receiver()
    server.start()
    yield server
    server.hold.set()
    server.stop()


@pytest.fixture
def webhooks_on(monkeypatch, receiver):
    """Webhooks on, sent to ``receiver``; fast polls for the tests."""
    from referral_app.settings import settings

    monkeypatch.setattr(settings, "webhook_url", receiver.url)
    monkeypatch.setattr(settings, "webhook_secret", SECRET)
    monkeypatch.setattr(settings, "webhook_timeout_seconds", 2.0)
    monkeypatch.setattr(settings, "webhook_poll_seconds", 0.05)
    return settings


def _rows(db, model) -> list[dict]:
    table = model.__table__
    rows = [dict(r._mapping) for r in db.execute(select(table).order_by(table.c.id)).all()]
    db.rollback()  # no transaction left open (on SQLite it would hold the write lock)
    return rows


def event_rows(db) -> list[dict]:
    """Every outbox row, typed (aware datetimes), oldest first."""
    from referral_app.models import WebhookEvent

    return _rows(db, WebhookEvent)


def attempt_rows(db) -> list[dict]:
    from referral_app.models import WebhookAttempt

    return _rows(db, WebhookAttempt)


from tests.domain.conftest import make_users, sign_up  # noqa: E402,F401  (the real sign-up flow)
