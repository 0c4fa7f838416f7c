"""Slow clients against the app as `make run` starts it (Granian), with short timeouts:
headers, a body and an idle keep-alive connection are each cut off (infra/server.py)."""

from __future__ import annotations

import socket
import time

import pytest

from tests.e2e.conftest import another_app

TIMEOUT = 2  # seconds, for headers and for a body
GIVE_UP = 20  # what "still open" means here (the issue saw minutes)


@pytest.fixture(scope="module")
def strict_app(app_server, tmp_path_factory):
    env = {"HTTP_HEADER_TIMEOUT_SECONDS": str(TIMEOUT), "HTTP_BODY_TIMEOUT_SECONDS": str(TIMEOUT)}
    with another_app(app_server, tmp_path_factory, extra_env=env) as app:
        yield app


def open_for(sock: socket.socket, trickle: bytes | None = None, every: float = 0.5) -> tuple[float, bytes]:
    """How long the server keeps ``sock`` open (sending ``trickle`` a byte at a time), and what it said."""
    started = time.monotonic()
    said = b""
    sock.settimeout(every)
    position = 0
    while time.monotonic() - started < GIVE_UP:
        try:
            chunk = sock.recv(65536)
            if not chunk:
                break
            said += chunk
        except TimeoutError:
            pass
        except OSError:
            break
        if trickle is not None and position < len(trickle):
            try:
                sock.sendall(trickle[position : position + 1])
            except OSError:
                break
            position += 1
    return time.monotonic() - started, said


def connect(app) -> socket.socket:
    return socket.create_connection(("127.0.0.1", app.port), timeout=5)


def test_headers_sent_a_byte_at_a_time_are_cut_off(strict_app):
    with connect(strict_app) as sock:
        elapsed, _ = open_for(sock, trickle=b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200)
    assert elapsed < TIMEOUT + 5, elapsed


def test_a_body_sent_a_byte_at_a_time_is_cut_off_with_408(strict_app):
    head = b"POST /api/v1/auth/request_code/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    with connect(strict_app) as sock:
        sock.sendall(head)
        elapsed, said = open_for(sock, trickle=b'{"phone_number": "' + b"1" * 900)
    assert elapsed < TIMEOUT + 5, elapsed
    assert said.startswith(b"HTTP/1.1 408"), said[:200]
    assert b"request.timeout" in said


def test_an_idle_keep_alive_connection_is_closed(strict_app):
    with connect(strict_app) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        elapsed, _ = open_for(sock)
    assert elapsed < TIMEOUT + 5, elapsed


def test_a_prompt_client_is_served_as_before(strict_app):
    with connect(strict_app) as sock:
        body = b'{"phone_number": "+79123456789"}'
        sock.sendall(b"POST /api/v1/auth/request_code/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(1)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
