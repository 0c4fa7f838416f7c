"""The sign-in that guides, called directly: countdowns from the clock, a dead code, the
code signing in on its last digit, repeats doing nothing, /?ref= and an ended session."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func
from sqlmodel import select

from referral_app.domain.phones import keep_together
from referral_app.domain.sms import sms_sender
from referral_app.i18n import translate
from referral_app.models import CodeSend, ConfirmationCode, User
from referral_app.settings import settings
from referral_app.state import login as login_module
from referral_app.state.login import LoginState, clock_text
from tests.state.conftest import event_name, make_state, run, sign_up


def count(db, model) -> int:
    value = db.exec(select(func.count()).select_from(model)).one()
    db.rollback()
    return value


def requested(phone="+79123456789", **kwargs) -> LoginState:
    state = make_state(LoginState, **kwargs)
    run(state.on_load())
    run(state.request_code({"phone": phone}))
    return state


class Clock:
    """``time.time`` of the login state, moved by hand."""

    def __init__(self, monkeypatch) -> None:
        self.now = time.time()
        monkeypatch.setattr(login_module.time, "time", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_clock_text():
    assert [clock_text(s) for s in (0, 9, 59, 60, 299)] == ["0:00", "0:09", "0:59", "1:00", "4:59"]


def test_the_code_step_counts_its_time_and_the_resend_from_the_clock(db, send_limits, monkeypatch):
    clock = Clock(monkeypatch)
    state = requested()
    assert state.code_left == settings.code_ttl_seconds
    assert state.code_expires_text == translate("login.code_expires", time="5:00")
    assert state.resend_in == send_limits.send_cooldown_seconds  # shown before any click
    assert state.resend_text == translate("login.resend_in", time="0:30")
    clock.advance(12)
    run(state.count_down(True))
    assert (state.code_left, state.resend_in) == (288, 18)
    clock.advance(18)
    run(state.count_down(True))
    assert state.resend_in == 0 and state.resend_text == translate("login.resend")


def test_an_expired_code_is_dead_and_offers_a_new_one(db, monkeypatch):
    clock = Clock(monkeypatch)
    state = requested()
    clock.advance(settings.code_ttl_seconds + 1)
    events = run(state.count_down(True))
    assert state.code_dead == "expired" and state.code_left == 0
    assert state.error_text == translate("login.code_expired")
    assert state.resend_text == translate("login.new_code")
    assert events == []  # nothing left to count: the clock stops
    assert run(state.confirm_code({"code": state.demo_code})) == []  # the button is gone, and so is the handler's work
    assert count(db, User) == 0
    run(state.resend_code())
    assert state.code_dead == "" and state.code_left == settings.code_ttl_seconds
    run(state.confirm_code({"code": state.demo_code}))
    assert state.step == "done"


def test_too_many_tries_kill_the_code(db):
    state = requested()
    wrong = [c for c in ("1111", "2222", "3333", "4444", "5555", "6666") if c != state.demo_code][:5]
    for guess in wrong:
        run(state.confirm_code({"code": guess}))
    assert state.code_dead == "attempts"
    assert state.error_text == translate("code.too_many_attempts")
    assert state.resend_text == translate("login.new_code")


def test_the_last_digit_signs_in_by_itself(db):
    state = requested()
    code = state.demo_code
    assert run(state.code_typed(code[:-1])) == []
    assert state.step == "code"
    events = run(state.code_typed(code))
    assert state.step == "done"
    assert any(event_name(e) == "_call_script" for e in events)


@pytest.mark.parametrize("value", [None, 42, ["1234"], {"a": 1}, "12", "1" * 10_000])
def test_the_code_field_ignores_what_is_not_a_whole_code(db, value):
    state = requested()
    assert run(state.code_typed(value)) == []
    assert state.step == "code" and db.exec(select(ConfirmationCode.attempts)).one() == 0
    db.rollback()


def test_a_repeated_get_code_sends_one_code(db, send_limits):
    """Double click or double Enter: the second event finds the code step and does nothing."""
    state = make_state(LoginState)
    form = {"phone": "+79123456789"}
    run(state.request_code(form))
    sent = len(sms_sender.outbox)
    assert run(state.request_code(form)) == []
    assert len(sms_sender.outbox) == sent
    assert count(db, CodeSend) == 1
    assert state.error_text == ""


def test_a_repeated_wrong_code_costs_one_attempt(db):
    state = requested()
    wrong = "1111" if state.demo_code != "1111" else "2222"
    run(state.code_typed(wrong))  # the last digit...
    assert run(state.confirm_code({"code": wrong})) == []  # ...then Enter, twice
    assert run(state.confirm_code({"code": f" {wrong} "})) == []
    assert db.exec(select(ConfirmationCode.attempts)).one() == 1
    db.rollback()
    assert state.error_text == translate("code.wrong")


def test_a_repeated_confirm_after_success_does_nothing(db):
    state = requested()
    code = state.demo_code
    run(state.confirm_code({"code": code}))
    assert run(state.confirm_code({"code": code})) == []
    assert state.step == "done" and state.error_text == ""


def test_the_inviter_of_ref_is_shown_masked_and_an_unknown_code_named(db):
    owner_id, _ = sign_up(db, "+79129903850")
    code = db.exec(select(User.invite_code).where(User.id == owner_id)).one()
    db.rollback()
    state = make_state(LoginState, query={"ref": code.lower()})
    run(state.on_load())
    assert (state.ref_status, state.ref_code, state.ref_inviter) == ("known", code, "+7 *** ***-38-50")
    assert state.invited_text == translate("login.invited_by", phone=keep_together("+7 *** ***-38-50"), code=code)
    assert "9129903850" not in str(state.dict())

    unknown = make_state(LoginState, query={"ref": "ZZZZZZ"})
    run(unknown.on_load())
    assert (unknown.ref_status, unknown.ref_code) == ("unknown", "")
    assert unknown.invited_text == translate("login.invite_unknown", code="ZZZZZZ")

    junk = make_state(LoginState, query={"ref": "<img src=x>" * 50})
    run(junk.on_load())
    assert junk.ref_status == "unknown" and len(junk.ref_shown) <= 16


def test_an_ended_session_is_named_on_the_sign_in_page(db):
    state = make_state(LoginState, query={"session": "ended", "ref": "ZZZZZZ"})
    run(state.on_load())
    assert state.session_ended
    run(state.request_code({"phone": "+79123456789"}))
    assert state.session_ended is False  # said once; the next step is a new start


def test_errors_name_their_field(db):
    state = make_state(LoginState)
    run(state.request_code({"phone": "12"}))
    assert state.error_field == "phone_number"
    state = requested()
    run(state.confirm_code({"code": "12"}))
    assert state.error_field == "confirmation_code"
