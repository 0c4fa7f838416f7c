"""A connection that never sends a byte is closed after HTTP_HEADER_TIMEOUT_SECONDS.

Before: Granian's default HTTP mode ("auto") first reads a connection's opening bytes to
choose HTTP/1 or HTTP/2, with no timeout, so a silent connection was never closed and 600
of them made a server at a 512-file limit unreachable (infra/server.py).
"""

from __future__ import annotations

import resource
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import create_test_database
from tests.faults.conftest import http, server_workers, started_app, wait_until

TIMEOUT_S = 2
# Generous: the machine is shared; the point is "closed", not "closed on the dot".
CLOSED_WITHIN_S = TIMEOUT_S + 10


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    extra = {"HTTP_HEADER_TIMEOUT_SECONDS": str(TIMEOUT_S)}
    log = tmp_path_factory.mktemp("idle") / "app.log"
    with started_app(log, create_test_database("idle"), extra) as running:
        yield running


def _port(app) -> int:
    return int(app.url.rsplit(":", 1)[1])


def _closed_after(sock: socket.socket, within: float) -> float | None:
    """Seconds until the server closed ``sock`` (EOF or reset), or None if still open."""
    started = time.monotonic()
    sock.settimeout(within)
    try:
        data = sock.recv(1024)
    except TimeoutError:
        return None
    except ConnectionResetError:
        return time.monotonic() - started
    assert data == b"", data  # the server said nothing and closed
    return time.monotonic() - started


def test_a_connection_that_sends_nothing_is_closed(app):
    with socket.create_connection(("127.0.0.1", _port(app)), timeout=5) as sock:
        took = _closed_after(sock, CLOSED_WITHIN_S + 20)
    assert took is not None and took < CLOSED_WITHIN_S, f"still open after {CLOSED_WITHIN_S + 20} s" if took is None else took
    assert took >= TIMEOUT_S * 0.5  # it was the timeout, not a refusal


def test_a_connection_with_half_a_request_line_is_closed(app):
    with socket.create_connection(("127.0.0.1", _port(app)), timeout=5) as sock:
        sock.sendall(b"GE")
        took = _closed_after(sock, CLOSED_WITHIN_S + 20)
    assert took is not None and took < CLOSED_WITHIN_S


def _open_files(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_silent_connections_beyond_the_file_limit_do_not_make_the_server_unreachable(app):
    """The worker may hold at most ``headroom`` more files than now; twice as many silent
    connections are opened. Once the timeout has closed them, the server answers again."""
    (worker,) = server_workers(app)
    headroom = 150
    limit = _open_files(worker) + headroom
    previous = resource.prlimit(worker, resource.RLIMIT_NOFILE)
    resource.prlimit(worker, resource.RLIMIT_NOFILE, (limit, previous[1]))
    idle: list[socket.socket] = []
    try:
        for _ in range(headroom * 2):  # more than the worker can hold; the rest wait in the backlog
            idle.append(socket.create_connection(("127.0.0.1", _port(app)), timeout=5))
        # While they are held the server cannot accept more; after the timeout it can.
        wait_until(lambda: http(app.url + "/api/v1/health/", timeout=5)[0] == 200, TIMEOUT_S * 3 + 30,
                   "the server answers again with silent connections around")
        closed = sum(_closed_after(sock, 0.5) is not None for sock in idle[:headroom // 2])
        assert closed == headroom // 2, f"{closed} of the first {headroom // 2} silent connections closed"
    finally:
        for sock in idle:
            sock.close()
        resource.prlimit(worker, resource.RLIMIT_NOFILE, previous)


def test_a_request_still_works_and_keep_alive_is_kept(app):
    """HTTP/1.1 keep-alive within the timeout: two requests on one connection."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", _port(app), timeout=10)
    try:
        for _ in range(2):
            connection.request("GET", "/api/v1/health/")
            response = connection.getresponse()
            assert response.status == 200 and response.read()
            assert response.version == 11 and not response.will_close
            time.sleep(TIMEOUT_S * 0.25)
        assert connection.sock is not None  # the same connection throughout
    finally:
        connection.close()
