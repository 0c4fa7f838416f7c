"""The running app's log, read while a hostile socket talks to it: no token, no forged line,
no flood (referral_app/infra/logs.py, infra/framework/reflex_socket.py)."""

from __future__ import annotations

import time
import urllib.request

from referral_app.domain import auth, sessions
from reflex.state import FrontendEventExceptionState
from tests.e2e.reflex_socket import EventSocket
from tests.e2e.test_journey import new_phone

SUPPRESSED = "referral_log_records_suppressed_total"


def log_size(app_server) -> int:
    return app_server.log.stat().st_size


def log_since(app_server, offset: int) -> str:
    with app_server.log.open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


def wait_for(app_server, offset: int, text: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        written = log_since(app_server, offset)
        if text in written:
            return written
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the log:\n{log_since(app_server, offset)[-3000:]}")


def logged(app_server, offset: int, text: str, send, again=None, tries: int = 5) -> str:
    """``send()``, then ``again()`` every 7 s, until ``text`` is in the log: this client's
    warnings are limited (LOG_RECORDS_PER_CLIENT_MINUTE, one more every 6 s), and a test
    before this one may have used up its budget."""
    send()
    for _ in range(tries):
        try:
            return wait_for(app_server, offset, text, timeout=7)
        except AssertionError:
            (again or send)()
    return wait_for(app_server, offset, text)


def test_an_unknown_event_from_a_signed_in_socket_logs_no_token(app_server, app_db):
    """Hole 3: the event was logged with its router data, the session cookie included; that
    token then worked on the API for 30 days."""
    phone = new_phone()
    issued = auth.request_code(app_db, phone, "127.0.0.1")
    user = auth.sign_in(app_db, phone, issued.code)
    token = sessions.create_session(app_db, user.id)
    app_db.rollback()
    offset = log_size(app_server)
    socket = EventSocket(app_server.port, origin=f"http://127.0.0.1:{app_server.port}",
                         cookie=f"theme=dark; referral_session={token}")
    try:
        written = logged(app_server, offset, "no_such_event", lambda: socket.emit(
            "no_such_state.no_such_event\n2026-01-01T00:00:00.000Z INFO forged", {"code": issued.code}
        ))
    finally:
        socket.close()
    assert token not in written
    assert "2026-01-01T00:00:00.000Z INFO forged" not in written.replace("\\n2026", "")
    assert not any(line.startswith("2026-01-01T00:00:00.000Z") for line in written.splitlines())


def test_frontend_reports_from_a_socket_that_is_not_signed_in_are_cut_and_limited(app_server):
    """300 reports of 100 kB added 15 MB in seconds, and a newline forged a whole log line."""
    offset = log_size(app_server)
    name = f"{FrontendEventExceptionState.get_full_name()}.handle_frontend_exception"
    report = "TypeError: broken\n2026-01-01T00:00:00.000Z INFO referral_app.domain.auth [-] forged\n" + "x" * 100_000
    socket = EventSocket(app_server.port, origin=f"http://127.0.0.1:{app_server.port}")
    try:

        def flood():
            for _ in range(300):
                socket.emit(name, {"info": report, "component_stack": "y" * 1000})

        logged(app_server, offset, "TypeError: broken", flood,
               again=lambda: socket.emit(name, {"info": report, "component_stack": "y" * 1000}))
        socket.collect(3)
    finally:
        socket.close()
    written = log_since(app_server, offset)
    assert len(written.encode()) < 50_000, len(written.encode())
    assert "referral_app.domain.auth [-] forged" not in [line[25:] for line in written.splitlines()]
    assert not any(line.startswith("2026-01-01T00:00:00.000Z") for line in written.splitlines())


def suppressed_records(app_server) -> float:
    """``referral_log_records_suppressed_total`` of all loggers, from /metrics (loopback may read it)."""
    with urllib.request.urlopen(app_server.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(SUPPRESSED + "{")
    )


def test_a_flood_of_unknown_events_adds_a_bounded_amount_of_log_and_is_counted(app_server):
    """Issue 18: each unknown event wrote about 9 kB (41.6 MB in 21 s from one socket)."""
    offset, before = log_size(app_server), suppressed_records(app_server)
    socket = EventSocket(app_server.port, origin=f"http://127.0.0.1:{app_server.port}")
    payload = {"junk": "y" * 8_000}
    try:
        for number in range(2_000):
            socket.emit(f"no_such_state.no_such_event_{number}", payload)
        deadline = time.monotonic() + 60
        while suppressed_records(app_server) - before < 1_900 and time.monotonic() < deadline:
            socket.collect(0.5)
    finally:
        socket.close()
    assert suppressed_records(app_server) - before >= 1_900
    time.sleep(1)
    written = log_since(app_server, offset)
    assert len(written.encode()) < 40_000, len(written.encode())  # a few short lines, not 2,000 of 9 kB
