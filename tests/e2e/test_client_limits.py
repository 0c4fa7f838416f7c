"""Per-client limits of the running app, with clients told apart through the trusted-proxy
rules (issue 18, "Bounded everything"): websockets per client address
(``MAX_WEBSOCKETS_PER_CLIENT``, infra/sockets.py) and frontend error reports per client
address (infra/logs.py)."""

from __future__ import annotations

import time
import uuid

import pytest
from reflex.state import FrontendEventExceptionState

from tests.e2e.conftest import another_app
from tests.e2e.reflex_socket import EventSocket, Refused
from tests.e2e.test_hostile_socket import log_since, log_size, wait_for

LIMIT = 6
CLIENT_A, CLIENT_B = "198.51.100.66", "203.0.113.5"


@pytest.fixture(scope="module")
def limited_app(app_server, tmp_path_factory):
    """The app behind a proxy on loopback, holding each client to LIMIT websockets."""
    env = {"TRUSTED_PROXIES": "127.0.0.1", "MAX_WEBSOCKETS_PER_CLIENT": str(LIMIT)}
    with another_app(app_server, tmp_path_factory, extra_env=env) as app:
        yield app


def tab(app, client: str) -> EventSocket:
    """A page's socket of ``client``, as the proxy passes it on."""
    return EventSocket(app.port, origin=app.url, headers=[("X-Forwarded-For", client)])


def close_all(sockets) -> None:
    for socket in sockets:
        socket.close()


def open_when_free(app, client: str, timeout: float = 15) -> EventSocket:
    """A new socket as soon as the server has seen an old one close."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return tab(app, client)
        except Refused:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_one_address_gets_limit_sockets_and_the_next_is_refused(limited_app):
    sockets = [tab(limited_app, CLIENT_A) for _ in range(LIMIT)]
    try:
        with pytest.raises(Refused) as refused:
            tab(limited_app, CLIENT_A)
        assert refused.value.status == 403
        other = tab(limited_app, CLIENT_B)  # another address is not affected
        sockets.append(other)
        sockets.pop(0).close()  # a closed socket gives its slot back
        sockets.append(open_when_free(limited_app, CLIENT_A))
        with pytest.raises(Refused):
            tab(limited_app, CLIENT_A)
    finally:
        close_all(sockets)
    # No slot leaks: once all are closed, the address gets its LIMIT again.
    sockets = [open_when_free(limited_app, CLIENT_A) for _ in range(LIMIT)]
    close_all(sockets)


def test_six_tabs_of_one_client_cannot_silence_another_clients_error_report(limited_app):
    """Issue 18: the reports' limit was 30 a minute for everybody and 5 per tab (and
    Reflex's own ``client_error`` limit 20 a minute for everybody): six tabs used it up."""
    name = f"{FrontendEventExceptionState.get_full_name()}.handle_frontend_exception"
    offset = log_size(limited_app)
    noisy = [open_when_free(limited_app, CLIENT_A) for _ in range(6)]  # the last test's may still be closing
    try:
        for socket in noisy:
            for _ in range(20):
                socket.emit(name, {"info": "TypeError: noise from one client", "component_stack": ""})
                socket.send('42/_event,["client_error",{"error_type":"noise","message":"client_error noise"}]')
        for socket in noisy:
            socket.collect(1)
    finally:
        close_all(noisy)
    real, other = f"TypeError: real {uuid.uuid4().hex}", f"client_error real {uuid.uuid4().hex}"
    socket = tab(limited_app, CLIENT_B)
    try:
        socket.emit(name, {"info": real, "component_stack": ""})
        socket.send('42/_event,["client_error",{"error_type":"real","message":"%s"}]' % other)
        socket.collect(1)
    finally:
        socket.close()
    written = wait_for(limited_app, offset, real)
    written = wait_for(limited_app, offset, other)
    assert written.count("noise from one client") + written.count("client_error noise") <= 20
    assert len(log_since(limited_app, offset).encode()) < 100_000
