"""LoginState handlers, called directly: the sign-in rules hold whatever the browser sends."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import select

import time

from referral_app.domain import sessions
from referral_app.domain.sms import sms_sender
from referral_app.i18n import translate
from referral_app.models import AuthSession, CodeSend, ConfirmationCode, User
from referral_app.settings import settings
from referral_app.state.login import LoginState
from tests.state.conftest import client_view, event_arg, event_name, make_state, run, sign_up

HOSTILE_TEXT = ["", "   ", "abc", "😀😀😀", "'; DROP TABLE users; --", "x" * 10_000, None, 42, ["+79123456789"], {"a": 1}]


def count(db, model) -> int:
    value = db.exec(select(func.count()).select_from(model)).one()
    db.rollback()  # SQLite: free the write lock for the handlers' own sessions
    return value


def requested(db, phone="+7 912 345-67-89") -> LoginState:
    state = make_state(LoginState)
    run(state.request_code({"phone": phone}))
    return state


def test_request_code_moves_to_code_step_and_shows_demo_code(db):
    state = requested(db)
    assert state.step == "code"
    assert state.phone_number == "+79123456789"
    assert state.demo_code.isdigit() and len(state.demo_code) == settings.code_length
    assert sms_sender.outbox[-1][0] == "+79123456789"
    assert state.demo_code in sms_sender.outbox[-1][1]
    assert state.requesting is False and state.error_text == ""


def test_without_demo_mode_the_code_never_reaches_the_state(db, monkeypatch):
    monkeypatch.setattr(settings, "demo_mode", False)
    state = requested(db)
    sent_code = sms_sender.outbox[-1][1].split(":")[1].split(".")[0].strip()
    assert state.step == "code" and state.demo_code == ""
    assert sent_code not in client_view(state)


@pytest.mark.parametrize("phone", HOSTILE_TEXT)
def test_bad_phone_gives_a_field_message_and_writes_nothing(db, phone):
    state = make_state(LoginState)
    run(state.request_code({"phone": phone}))
    assert state.step == "phone"
    assert state.error_field == "phone_number"
    assert state.error_text in {translate("phone.required"), translate("phone.invalid")}
    assert count(db, ConfirmationCode) == 0


@pytest.mark.parametrize("form_data", [None, "phone=+79123456789", ["+79123456789"], 7])
def test_form_data_that_is_not_a_form_is_refused(db, form_data):
    state = make_state(LoginState)
    run(state.request_code(form_data))
    assert state.error_text and state.step == "phone"
    assert count(db, ConfirmationCode) == 0


def test_wrong_code_shows_error_and_signs_nobody_in(db):
    state = requested(db)
    wrong = "0000" if state.demo_code != "0000" else "1111"
    events = run(state.confirm_code({"code": wrong}))
    assert state.error_text == translate("code.wrong")
    assert state.confirming is False
    assert not any(event_name(e) == "_call_script" for e in events)
    assert count(db, AuthSession) == 0


@pytest.mark.parametrize("code", HOSTILE_TEXT)
def test_malformed_code_is_a_field_error_and_costs_no_attempt(db, code):
    state = requested(db)
    run(state.confirm_code({"code": code}))
    assert state.error_field == "confirmation_code"
    assert db.exec(select(ConfirmationCode.attempts)).one() == 0
    assert count(db, User) == 0


def test_right_code_creates_user_and_hands_the_browser_a_one_time_claim(db):
    state = requested(db)
    code = state.demo_code
    events = run(state.confirm_code({"code": code}))
    script = next(e for e in events if event_name(e) == "_call_script")
    javascript = event_arg(script, "javascript_code")
    claim = javascript.split('"claim": "')[1].split('"')[0]
    assert "/api/v1/auth/browser_session/" in javascript
    assert state.demo_code == ""
    user = db.exec(select(User)).one()
    token = sessions.claim_browser_session(db, claim)
    assert sessions.authenticated_user_id(db, token) == user.id
    assert token not in client_view(state) and claim not in client_view(state)


def test_used_code_cannot_be_replayed(db):
    state = requested(db)
    code = state.demo_code
    run(state.confirm_code({"code": code}))
    replay = make_state(LoginState)
    replay.step, replay.phone_number = "code", "+79123456789"
    replay._code_until = time.time() + 300
    run(replay.confirm_code({"code": code}))
    assert replay.error_text == translate("code.wrong")
    assert count(db, AuthSession) == 1


def test_confirm_before_a_code_was_requested_does_nothing(db):
    state = make_state(LoginState)
    assert run(state.confirm_code({"code": "1234"})) == []
    assert count(db, User) == 0


def test_ref_parameter_is_normalised_and_kept(db):
    state = make_state(LoginState, query={"ref": " abc-def "})
    run(state.on_load())
    assert state.ref_code == ""  # nobody has this code
    assert state.ref_status == "unknown" and "ABCDEF" in state.invited_text


def test_invalid_ref_parameter_is_ignored(db):
    state = make_state(LoginState, query={"ref": "<script>"})
    run(state.on_load())
    assert state.ref_code == ""


def test_signed_in_visitor_is_sent_to_the_profile_with_the_ref(db, user):
    _, token = user
    inviter_id, _ = sign_up(db, "+79123450000")
    code = db.exec(select(User.invite_code).where(User.id == inviter_id)).one()
    db.rollback()
    state = make_state(LoginState, token=token, query={"ref": code.lower()})
    events = run(state.on_load())
    assert [event_name(e) for e in events] == ["_call_script", "_redirect"]  # the language, then away
    assert event_arg(events[-1], "path") == f"/profile/?ref={code}"  # no /profile → /profile/ detour


def test_change_phone_goes_back_to_the_first_step(db):
    state = requested(db)
    run(state.change_phone())
    assert state.step == "phone" and state.demo_code == "" and state.phone_number == ""


def test_resend_replaces_the_code(db, monkeypatch):
    new_codes = iter(["1111", "2222"])
    monkeypatch.setattr("referral_app.domain.codes.generate_code", lambda: next(new_codes))
    state = requested(db)
    run(state.resend_code())
    assert state.step == "code" and state.demo_code == "2222"
    assert count(db, ConfirmationCode) == 1
    run(state.confirm_code({"code": "1111"}))
    assert state.error_text == translate("code.wrong")


def test_resend_needs_a_phone_first(db):
    state = make_state(LoginState)
    assert run(state.resend_code()) == []
    assert count(db, ConfirmationCode) == 0


def test_send_limit_shows_a_countdown_and_blocks_the_button(db, send_limits):
    state = requested(db)
    assert state.step == "code"
    state._resend_until = 0.0  # the page's own cooldown is over (or was tampered with)
    events = run(state.resend_code())
    assert 0 < state.retry_after <= send_limits.send_cooldown_seconds
    assert state.error_text == translate("rate.limited", seconds=state.retry_after)
    assert state._ticking  # the page's countdown runs (started with the first code)
    del events
    sends_before = count(db, CodeSend)
    assert run(state.resend_code()) == []  # nothing reaches the server's limits while counting down
    assert count(db, CodeSend) == sends_before


def test_brute_force_through_the_ui_stops_after_five_guesses(db, send_limits):
    state = requested(db)
    real = state.demo_code
    wrong = [code for code in (f"{n:04d}" for n in range(10)) if code != real]
    messages = []
    for guess in wrong[:7]:
        run(state.confirm_code({"code": guess}))
        messages.append(state.error_text)
    assert messages[:4] == [translate("code.wrong")] * 4
    assert messages[4:] == [translate("code.too_many_attempts")] * 3
    assert state.code_dead == "attempts"  # the page offers a new code instead of the button
    run(state.confirm_code({"code": real}))
    assert state.error_text == translate("code.too_many_attempts")
    state.code_dead = ""  # a tampered page: the server still refuses the right code
    run(state.confirm_code({"code": real}))
    assert state.error_text == translate("code.too_many_attempts")
    assert count(db, User) == 0
    assert state.resend_in > 0 and run(state.resend_code()) == []  # the resend countdown holds
    state._resend_until = 0.0
    run(state.resend_code())  # and behind it the server's cooldown
    assert state.retry_after > 0


def test_after_a_sign_in_the_page_starts_over_for_the_next_one(db):
    """Signed out later (logout, revoked, expired), the same tab gets a fresh sign-in form."""
    state = requested(db)
    run(state.confirm_code({"code": state.demo_code}))
    assert state.step == "done" and state.confirming is False
    run(state.on_load())
    assert (state.step, state.phone_number, state.demo_code) == ("phone", "", "")
    assert state.requesting is False and state.confirming is False


def test_a_failed_cookie_exchange_starts_over(db):
    state = requested(db)
    run(state.confirm_code({"code": state.demo_code}))
    run(state.session_claimed(False))
    assert state.step == "phone" and state.error_text == translate("error.unknown")
