"""Raw requests against the app as `make run` starts it (Granian): a malformed chunked body
answers 400 (it answered Granian's 500), and a Host the operator did not configure is
refused, the websocket handshake too (issue 18). In-process tests of the same:
tests/api/test_malformed_body.py, tests/api/test_unknown_hosts.py."""

from __future__ import annotations

import json
import socket

import pytest

from tests.e2e.conftest import another_app
from tests.e2e.test_cross_origin import handshake

# Chunked bodies Granian cannot decode (RFC 9112 §7.1): a size that is not hex, a chunk
# without its CRLF.
MALFORMED = {"size not hex": b"zz\r\n{}\r\n0\r\n\r\n", "no CRLF after the chunk": b"2\r\n{}XX0\r\n\r\n"}


def exchange(port: int, request: bytes, timeout: float = 20) -> bytes:
    """Send ``request`` on a new connection; everything the server says until it closes or pauses."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        said = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                said += chunk
                head, sep, body = said.partition(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if sep and length is not None and len(body) >= length:
                    break
        except TimeoutError:
            pass
    return said


def status_of(said: bytes) -> int:
    return int(said.split(b" ", 2)[1])


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize("path", ["/api/v1/auth/request_code/", "/admin/login"])
def test_a_malformed_chunked_body_answers_400_not_500(app_server, path, body):
    port = app_server.port
    said = exchange(port, (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode() + body)
    assert status_of(said) == 400, said[:300]
    if path.startswith("/api/"):
        assert json.loads(said.partition(b"\r\n\r\n")[2])["code"] == "request.malformed"
    # The server still answers the next request.
    with socket.create_connection(("127.0.0.1", port), timeout=20):
        pass
    ok = exchange(port, f"GET /ping HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    assert status_of(ok) == 200


@pytest.fixture(scope="module")
def hosts_app(app_server, tmp_path_factory):
    with another_app(app_server, tmp_path_factory, extra_env={"ALLOWED_HOSTS": "app.example.test,127.0.0.1"}) as app:
        yield app


def get(port: int, path: str, host: str) -> bytes:
    return exchange(port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())


def test_a_forged_host_is_refused_and_a_configured_one_served(hosts_app):
    port = hosts_app.port
    for path in ("/", "/profile", "/admin", "/admin/login", "/api/v1/profile/me/"):
        said = get(port, path, f"evil.example:{port}")
        assert status_of(said) == 400, (path, said[:200])
        assert b"evil.example" not in said and b"location:" not in said.lower()
    assert status_of(get(port, "/", f"app.example.test:{port}")) == 200
    moved = get(port, "/admin", f"app.example.test:{port}")  # a redirect names no host at all
    assert status_of(moved) in (307, 308) and b"\r\nlocation: /admin/" in moved.lower()
    login = get(port, "/admin/login", f"app.example.test:{port}")
    assert f'action="http://app.example.test:{port}/admin/login"'.encode() in login
    # Probes name the pod by its address.
    assert status_of(get(port, "/ping", f"10.1.2.3:{port}")) == 200


def test_the_websocket_handshake_for_a_forged_host_is_refused(hosts_app):
    port = hosts_app.port
    status, first = handshake(port, f"http://evil.example:{port}", host="evil.example")
    assert status in (400, 403) and first is None
    status, first = handshake(port, f"http://app.example.test:{port}", host="app.example.test")
    assert status == 101 and first.startswith("0{")
