"""Logs: one line per request with its request id, JSON on request, the sign-in and
activation events tied to their request, and no codes or tokens outside demo mode."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re

import pytest
from fastapi.testclient import TestClient

from referral_app.infra import logs
from referral_app.referral_app import api
from referral_app.domain import codes
from referral_app.infra.logs import RequestIdMiddleware, configure_logging, safe_query
from referral_app.settings import settings

PHONE_A, PHONE_B = "+79123456789", "+79123456780"
ACCESS_LOGGER = "referral_app.requests"
HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def log_output():
    """The app's logging set up as in production, writing to a buffer; undone afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_factory = logging.getLogRecordFactory()
    saved_noisy = {name: logging.getLogger(name).level for name in logs._NOISY_LOGGERS}
    buffer = io.StringIO()

    def setup(json_lines: bool = False) -> io.StringIO:
        configure_logging(json_lines=json_lines, level="INFO", stream=buffer)
        return buffer

    yield setup
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    logging.setLogRecordFactory(saved_factory)
    for name, level in saved_noisy.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def client(db, monkeypatch):
    monkeypatch.delenv("REFLEX_REDIS_URL", raising=False)
    with TestClient(api, client=("198.51.100.7", 50000)) as test_client:
        yield test_client


def access_records(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == ACCESS_LOGGER]


def test_one_line_per_request_with_its_request_id(client, log_output, caplog):
    output = log_output()
    caplog.set_level(logging.INFO)
    responses = [client.get("/api/health"), client.get("/api/v1/nothing/"), client.post("/api/auth/auth_code", content=b"x" * 20_000)]
    records = access_records(caplog)
    assert [record.status for record in records] == [200, 404, 413]
    for response, record in zip(responses, records, strict=True):
        request_id = response.headers["X-Request-ID"]
        assert HEX_ID.fullmatch(request_id)
        assert record.request_id == request_id
        assert record.duration_ms >= 0 and record.client == "198.51.100.7"
    assert records[0].method == "GET" and records[0].path == "/api/health"
    lines = [line for line in output.getvalue().splitlines() if ACCESS_LOGGER in line]
    assert len(lines) == 3
    assert f"INFO {ACCESS_LOGGER} [{responses[0].headers['X-Request-ID']}] GET /api/health 200 " in lines[0]
    assert "client=198.51.100.7" in lines[0]
    assert len({response.headers["X-Request-ID"] for response in responses}) == 3


def test_pages_get_a_request_id_too(client, log_output, caplog):
    log_output()
    caplog.set_level(logging.INFO)
    response = client.get("/api/docs")
    assert HEX_ID.fullmatch(response.headers["X-Request-ID"])
    assert access_records(caplog)[-1].request_id == response.headers["X-Request-ID"]


def test_json_lines(client, log_output):
    output = log_output(json_lines=True)
    response = client.get("/api/v1/health/", headers={"X-Request-ID": "lb-7f3a-0001"})
    logging.getLogger("referral_app.test").warning("with extras", extra={"user_id": 7})
    entries = [json.loads(line) for line in output.getvalue().splitlines()]
    access = [entry for entry in entries if entry["logger"] == ACCESS_LOGGER]
    assert len(access) == 1
    entry = access[0]
    assert {"time", "level", "logger", "message", "request_id"} <= set(entry)
    assert entry["request_id"] == "lb-7f3a-0001" == response.headers["X-Request-ID"]
    assert entry["level"] == "INFO" and entry["message"].startswith("GET /api/v1/health/ 200 ")
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/api/v1/health/", 200)
    assert isinstance(entry["duration_ms"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    other = [entry for entry in entries if entry["logger"] == "referral_app.test"][0]
    assert other["user_id"] == 7 and other["request_id"] is None and other["level"] == "WARNING"


@pytest.mark.parametrize(
    "incoming, kept",
    [
        ("abc-123", True),
        ("A" * 64, True),
        ("A" * 65, False),
        ("", False),
        ("evil id", False),
        ("x\r\nSet-Cookie: a=b", False),
        ("<script>", False),
        ("../../etc", False),
        ("ид", False),
    ],
)
def test_incoming_request_id_is_echoed_only_when_safe(client, log_output, caplog, incoming, kept):
    log_output()
    caplog.set_level(logging.INFO)
    response = client.get("/api/health", headers={"X-Request-ID": incoming.encode("utf-8")})
    echoed = response.headers["X-Request-ID"]
    assert echoed == incoming if kept else HEX_ID.fullmatch(echoed)
    assert response.headers.get_list("X-Request-ID") == [echoed]
    assert access_records(caplog)[-1].request_id == echoed


def test_query_strings_are_logged_with_credentials_masked():
    assert safe_query(b"cursor=MjAyNi0xMS0yNlQxMjowMDowMCswMDowMHwxMg&limit=5") == (
        "cursor=MjAyNi0xMS0yNlQxMjowMDowMCswMDowMHwxMg&limit=5"
    )
    assert safe_query(b"token=abc&confirmation_code=1234&api_key=k&limit=5") == (
        "token=%2A%2A%2A&confirmation_code=%2A%2A%2A&api_key=%2A%2A%2A&limit=5"
    )
    assert safe_query(b"") == ""


def test_sign_in_and_activation_are_logged_with_the_request_id_and_no_secrets(
    client, db, log_output, caplog, capsys, monkeypatch
):
    """Demo mode off: the code goes only to the SMS sender; neither it nor the token is logged."""
    output = log_output(json_lines=True)
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(settings, "demo_mode", False)
    monkeypatch.setattr(settings, "allowed_hosts", ("testserver",))  # production answers configured hosts only
    monkeypatch.setattr(settings, "code_length", 8)
    secret_codes = iter(["90817263", "71526354"])
    monkeypatch.setattr(codes, "generate_code", lambda length=None: next(secret_codes))

    tokens, sign_in_ids = [], []
    for phone, code in ((PHONE_A, "90817263"), (PHONE_B, "71526354")):
        sent = client.post("/api/v1/auth/request_code/", json={"phone_number": phone})
        assert sent.json() == {"expires_in": settings.code_ttl_seconds}
        response = client.post("/api/v1/auth/auth_code/", json={"phone_number": phone, "confirmation_code": code})
        assert response.status_code == 200, response.text
        tokens.append(response.json()["token"])
        sign_in_ids.append(response.headers["X-Request-ID"])
    headers = {"Authorization": f"Bearer {tokens[1]}"}
    invite_code = client.get("/api/v1/profile/me/", headers={"Authorization": f"Token {tokens[0]}"}).json()["invite_code"]
    activated = client.post("/api/v1/profile/activate_invite/", json={"invite_code": invite_code}, headers=headers)
    assert activated.status_code == 200, activated.text
    client.get(f"/api/v1/profile/me/referrals/?limit=5&token={tokens[1]}", headers=headers)
    client.post("/api/v1/auth/logout/", headers=headers)

    events = {}
    for record in caplog.records:
        if getattr(record, "event", None):
            events.setdefault(record.event, []).append(record)
    assert [record.request_id for record in events["sign_in"]] == sign_in_ids
    assert [record.user_id for record in events["sign_in"]] == [user_id(db, PHONE_A), user_id(db, PHONE_B)]
    (activation,) = events["invite_activated"]
    assert activation.request_id == activated.headers["X-Request-ID"]
    assert (activation.user_id, activation.inviter_id) == (user_id(db, PHONE_B), user_id(db, PHONE_A))

    logged = output.getvalue() + caplog.text + "".join(capsys.readouterr())
    assert '"event": "sign_in"' in output.getvalue() and '"event": "invite_activated"' in output.getvalue()
    assert "token=***" in logged or "token=%2A%2A%2A" in logged
    for secret in ["90817263", "71526354", *tokens, "Bearer", "Authorization"]:
        assert secret not in logged, secret


def user_id(db, phone: str) -> int:
    from sqlmodel import select

    from referral_app.models import User

    value = db.exec(select(User.id).where(User.phone_number == phone)).one()
    db.rollback()
    return value


def test_demo_mode_alone_logs_the_code(client, log_output, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    log_output()
    monkeypatch.setattr(codes, "generate_code", lambda length=None: "5172")
    client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A})
    assert "5172" in caplog.text  # the demo SMS sender's line, as documented


def test_configure_logging_is_idempotent(log_output):
    output = log_output()
    configure_logging(json_lines=False, level="INFO")
    configure_logging(json_lines=True, level="INFO")
    ours = [handler for handler in logging.getLogger().handlers if getattr(handler, "referral_app_owned", False)]
    assert len(ours) == 1
    logging.getLogger("referral_app.test").info("once")
    lines = [line for line in output.getvalue().splitlines() if "once" in line]
    assert len(lines) == 1 and json.loads(lines[0])["message"] == "once"


def test_settings_pick_the_format_and_level(log_output, monkeypatch):
    output = log_output()
    monkeypatch.setattr(settings, "log_json", True)
    monkeypatch.setattr(settings, "log_level", "WARNING")
    configure_logging(stream=output)
    logging.getLogger("referral_app.test").info("hidden")
    logging.getLogger("referral_app.test").warning("shown")
    assert [json.loads(line)["message"] for line in output.getvalue().splitlines()] == ["shown"]


def test_a_crash_is_logged_as_a_500_with_its_request_id(log_output, caplog):
    log_output()
    caplog.set_level(logging.INFO)

    async def crashing_app(scope, receive, send):
        raise RuntimeError("boom")

    async def run():
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/x", "query_string": b"", "headers": [], "client": None}
        with pytest.raises(RuntimeError):
            await RequestIdMiddleware(crashing_app)(scope, receive, send)

    asyncio.run(run())
    (record,) = access_records(caplog)
    assert record.status == 500 and record.levelno == logging.WARNING and HEX_ID.fullmatch(record.request_id)
    assert logs.current_request_id() is None


def test_reflex_events_are_logged_with_their_transaction_id(log_output, caplog):
    """Reflex handles websocket events on its own queue, outside the websocket's context."""
    from reflex_base.event.context import EventContext

    log_output()
    caplog.set_level(logging.INFO)
    with EventContext(token="client-token", state_manager=None, enqueue_impl=None) as context:
        logging.getLogger("referral_app.test").info("in an event")
    logging.getLogger("referral_app.test").info("outside")
    inside, outside = caplog.records[-2:]
    assert inside.request_id == context.txid and re.fullmatch(r"[0-9a-f]{12}", inside.request_id)
    assert outside.request_id is None


def test_a_path_cannot_forge_a_log_line(client, log_output, caplog):
    output = log_output()
    caplog.set_level(logging.INFO)
    client.get("/api/health%0A2026-01-01T00:00:00.000Z%20INFO%20referral_app.domain.auth%20signed%20in")
    lines = [line for line in output.getvalue().splitlines() if "signed in" in line]
    assert len(lines) == 1 and lines[0].split(" ")[2] == ACCESS_LOGGER
    assert "/api/health\\n2026" in lines[0]
