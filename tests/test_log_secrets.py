"""No secret and no raw client text in any log line, whichever logger writes it (Reflex's too),
and frontend error reports limited in size and rate (referral_app/infra/logs.py)."""

from __future__ import annotations

import json
import logging

import pytest

from referral_app.infra import logs
from referral_app.infra.logs import configure_logging, frontend_exception_handler, mask_secrets, one_line
from referral_app.settings import settings
from tests.test_logs import log_output  # noqa: F401  (the fixture)

TOKEN = "pX1s9kq0c2f8Vb7dT3mN4rL6hY5wE1aZjQ8uK0oI2gS"  # the shape of a session token (43 characters)
CLAIM = "Zq8Yv1Wx2Uu3Tt4Ss5Rr6Qq7Pp8Oo9Nn0Mm1Ll2Kk3J"


@pytest.fixture
def output(log_output):
    """The app's logging as in production, writing to a buffer (tests/test_logs.py), Reflex's
    logger included; undone afterwards."""
    reflex_logger = logging.getLogger("reflex")
    saved = reflex_logger.handlers[:], reflex_logger.propagate
    yield log_output
    reflex_logger.handlers[:], reflex_logger.propagate = saved


@pytest.mark.parametrize(
    "text",
    [
        f"Cookie: referral_session={TOKEN}; theme=dark",
        f"cookie: __Host-referral_session={TOKEN}",
        f"{{'cookie': 'referral_session={TOKEN}; a=b', 'host': 'x'}}",
        f'{{"cookie": "referral_session={TOKEN}"}}',
        f"HeaderData(host='x', cookie='referral_session={TOKEN}; referral_admin={CLAIM}')",
        f"Authorization: Bearer {TOKEN}",
        f"{{'authorization': 'Token {TOKEN}'}}",
        f"GET /api/v1/profile/me/?token={TOKEN}&limit=5",
        f"payload={{'form_data': {{'claim': '{TOKEN}'}}}}",
        f'{{"claim": "{TOKEN}"}}',
        f"body={{'csrf_token': '{TOKEN}'}}",
        f"a bare token {TOKEN} in a sentence",
        f"set-cookie: referral_admin={TOKEN}; HttpOnly",
        f"Set-Cookie: __Host-referral_admin_login={TOKEN}; Secure",
    ],
)
def test_credentials_are_masked_in_every_shape(text):
    masked = mask_secrets(text)
    assert TOKEN not in masked and CLAIM not in masked, masked
    assert "***" in masked


@pytest.mark.parametrize(
    "text",
    [
        "{'form_data': {'code': '7731'}}",
        '{"confirmation_code": "7731"}',
        '{"confirmation_code": 7731}',
        "[['code', '7731'], ['code_input', '7731']]",
        '{"password": "7731 my long password"}',
        "username=alice&password=7731",
    ],
)
def test_codes_and_passwords_in_structured_text_are_masked(text):
    assert "7731" not in mask_secrets(text), mask_secrets(text)


def test_what_is_not_a_secret_stays_readable():
    for text in [
        "signed in (event=sign_in user_id=7)",
        "invite activated: invite_code=H4W9PA",
        "demo SMS to +79123456789: Your sign-in code: 1234. It is valid for 5 minutes.",
        "GET /api/v1/profile/me/referrals/?cursor=MjAyNi0xMS0yNlQxMjowMA&limit=5 200 3.1 ms",
        "Token cleanup error: timeout",
        "reflex___state____state.referral_app___state___profile____profile_state.activate",
        "5ad9e6a4-28bd-4106-9d6d-4e58cbeac774",
        "a hash 9e83ab82d24cc304d029e8db883816fcbf21a9e8fbc5a38489f55ffc3df552a2",
    ]:
        assert mask_secrets(text) == text


def _masked_without_shortcuts(text: str) -> str:
    for pattern, replacement in logs._MASKS:
        text = pattern.sub(replacement, text)
    return logs._TOKEN_SHAPE.sub(logs._token_shaped, text)


@pytest.mark.parametrize("text", [
    "GET /api/v1/profile/me/ 200 3.1 ms", f"POST /api/v1/x/{TOKEN} 404 1.0 ms", f"bearer\t{TOKEN}",
    f"Basic {TOKEN}", "cookie referral_session", f"[{TOKEN!r}]", "code 7731", "a: b", "x" * 300 + "=y",
    f"token {CLAIM} and more", "['code', '7731']", "Authorization: abc", "Token abcdefghijklmnopqr",
])
def test_skipping_the_patterns_or_remembering_a_text_never_changes_what_is_masked(text):
    """``mask_secrets`` runs the key-value patterns only on text that could match one (and
    remembers short texts): the same result as running every pattern every time."""
    assert mask_secrets(text) == _masked_without_shortcuts(text)
    assert mask_secrets(text) == _masked_without_shortcuts(text)  # remembered


def test_the_server_secret_and_url_passwords_are_masked(monkeypatch):
    monkeypatch.setattr(settings, "secret_key", "the-server-secret-value")
    monkeypatch.setattr(settings, "database_url", "postgresql+psycopg2://app:db-pass-word@db/app")
    logs._known_secrets.cache_clear()
    try:
        masked = mask_secrets("key the-server-secret-value, url postgresql://app:db-pass-word@db/app")
        assert "the-server-secret-value" not in masked and "db-pass-word" not in masked
    finally:
        logs._known_secrets.cache_clear()


def test_control_characters_are_escaped():
    assert one_line("a\nb\r\x1b[31mred\x00\u2028end\t") == "a\\nb\\r\\x1b[31mred\\x00\\u2028end\\t"
    assert one_line("plain text, ünïcödé ✓") == "plain text, ünïcödé ✓"


@pytest.mark.parametrize("json_lines", [False, True])
@pytest.mark.parametrize("logger_name", ["referral_app.test", "reflex_base.event.processor.event_processor",
                                         "reflex", "granian", "some.library"])
def test_every_logger_goes_through_the_one_policy(output, json_lines, logger_name):
    stream = output(json_lines=json_lines)
    forged = "x\n2026-01-01T00:00:00.000Z INFO referral_app.domain.auth [-] signed in"
    logging.getLogger(logger_name).warning("event %s with cookie referral_session=%s", forged, TOKEN)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert TOKEN not in lines[0]
    if json_lines:
        assert json.loads(lines[0])["logger"] == logger_name


def test_a_missing_event_with_router_data_is_logged_without_the_cookie(output):
    """Hole 3: Reflex logs an event whose name does not exist with its router data, cookie included."""
    from reflex_base.event import Event

    stream = output()
    event = Event(
        name="no_such_state.no_such_event\nINFO forged",
        router_data={"pathname": "/profile", "headers": {"cookie": f"referral_session={TOKEN}", "host": "x"}},
        payload={"form_data": {"code": "7731"}},
    )
    # What reflex_base/event/processor/event_processor.py does with it.
    try:
        try:
            raise KeyError(f"No registered handler found for event: {event.name}")
        except KeyError as error:
            raise KeyError("No registered handler found for event") from error
    except KeyError:
        logging.getLogger("reflex_base.event.processor.event_processor").exception(
            f"Error processing event queue entry for {event} [txid=abc]:"
        )
    text = stream.getvalue()
    assert TOKEN not in text and "7731" not in text
    assert "no_such_state.no_such_event\\nINFO forged" in text  # raw client text is escaped
    first, *traceback_lines = text.rstrip("\n").split("\n")
    assert "Error processing event queue entry" in first
    assert traceback_lines and all(line.startswith("  ") for line in traceback_lines)  # cannot pass for a line


def test_the_reflex_logger_reaches_the_apps_handler(output):
    reflex_logger = logging.getLogger("reflex")
    reflex_logger.addHandler(logging.NullHandler())
    reflex_logger.propagate = False  # what Reflex's CLI does
    stream = output()
    assert reflex_logger.propagate and reflex_logger.handlers == []
    logging.getLogger("reflex_base.utils.console").info("from Reflex")
    assert "from Reflex" in stream.getvalue()


# Frontend error reports


@pytest.fixture
def limiter(monkeypatch):
    fresh = logs.ClientLogLimiter(settings.log_records_per_client_minute, timer=False)
    monkeypatch.setattr(logs, "client_records", fresh)
    return fresh


def test_frontend_reports_are_cut_and_limited(output, limiter):
    """300 reports of 100 kB (the issue's measure) add a few kB, not 15 MB."""
    stream = output()
    report = "TypeError: x\n2026-01-01T00:00:00.000Z INFO forged line\n" + "A" * 100_000
    for _ in range(300):
        frontend_exception_handler(Exception(report))
    text = stream.getvalue()
    lines = text.splitlines()
    assert len(lines) <= settings.log_records_per_client_minute
    assert len(text) < settings.log_records_per_client_minute * (logs.FRONTEND_REPORT_MAX_CHARS + 500)
    assert all("forged line" not in line.split("frontend exception: ", 1)[0] for line in lines)
    assert lines[0].count("\n") == 0 and "\\n2026" in lines[0]


def test_reflex_routes_frontend_reports_to_the_limited_handler():
    from reflex.utils.prerequisites import get_and_validate_app

    assert get_and_validate_app().app.frontend_exception_handler is frontend_exception_handler


def test_a_huge_client_made_line_is_cut_and_masked_quickly(output):
    """Reflex logs a whole unknown event, and a client chooses its size (1 MB on the socket)."""
    import time

    stream = output()
    started = time.monotonic()
    logging.getLogger("reflex_base.event.processor.event_processor").error(
        "Error processing event %s", "a" * 1_000_000 + f" referral_session={TOKEN}"
    )
    logging.getLogger("referral_app.test").error("x %s", "A1b" * 300_000)
    assert time.monotonic() - started < 5  # linear, not a regex's quadratic walk
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and all(len(line) < logs.MAX_MESSAGE_CHARS + 500 for line in lines)
    assert "more characters" in lines[0]
