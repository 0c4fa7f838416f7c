"""A modified browser can send any event with any arguments: nothing it sends is trusted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from referral_app.domain import referrals
from referral_app.domain.clock import utcnow
from referral_app.models import User
from referral_app.state.base import SessionState
from referral_app.state.login import LoginState
from referral_app.state.profile import ProfileState
from tests.state.conftest import client_view, event_name, make_state, run, sign_up

STATES = [SessionState, LoginState, ProfileState]


@pytest.mark.parametrize("state_class", STATES)
def test_no_var_can_be_set_from_the_browser(state_class):
    """Auto-setters are off: the only handlers are the ones written, none named set_*."""
    handlers = set(state_class.event_handlers)
    assert not any(name.startswith("set_") for name in handlers), handlers
    assert not any(name.startswith("_") and not name.startswith("__") for name in handlers)


def test_ticking_the_countdown_does_not_lift_the_limit(db, send_limits):
    """A client that fires the countdown's ticks at will changes nothing: the clock decides,
    and a state whose clock was wiped still meets the server's send limit."""
    state = make_state(LoginState)
    run(state.request_code({"phone": "+79123456789"}))
    assert state.resend_in > 0
    for _ in range(100):
        run(state.count_down(True))
    assert state.resend_in > 0
    assert run(state.resend_code()) == []
    state._resend_until = 0.0  # what a tampered state could hold
    run(state.resend_code())
    assert state.retry_after > 0
    for _ in range(100):
        run(state.count_down(True))
    assert state.retry_after > 0


def test_a_forged_cursor_only_pages_through_ones_own_list(db):
    owner_id, _ = sign_up(db, "+79123456789")
    owner_code = db.exec(select(User.invite_code).where(User.id == owner_id)).one()
    db.rollback()
    start = utcnow()
    for i in range(3):
        invited_id, _ = sign_up(db, f"+7912000000{i}")
        referrals.activate_invite(db, invited_id, owner_code, now=start + timedelta(seconds=i))
    foreign_cursor = referrals.list_referrals(db, owner_id, limit=1).next_cursor
    db.rollback()

    _, attacker_token = sign_up(db, "+79120009999")
    attacker = make_state(ProfileState, token=attacker_token, path="/profile")
    run(attacker.on_load())
    attacker.next_cursor = foreign_cursor  # what a tampered client could hold
    run(attacker.load_more())
    assert attacker.referrals == []


@pytest.mark.parametrize("cursor", ["garbage", "x" * 10_000, "MjAyNi0xMS0yNlQwMDowMDowMCswMDowMHwx" * 3])
def test_a_malformed_cursor_is_a_message_not_an_exception(db, cursor):
    _, token = sign_up(db, "+79123456789")
    state = make_state(ProfileState, token=token, path="/profile")
    run(state.on_load())
    state.next_cursor = cursor
    run(state.load_more())
    assert state.error_text and state.loading_more is False


def test_another_users_handler_state_cannot_act_without_their_cookie(db):
    """Copying a victim's page state is useless: the handler asks the database who the cookie is."""
    victim_id, victim_token = sign_up(db, "+79123456789")
    _, attacker_token = sign_up(db, "+79123456780")
    victim_view = make_state(ProfileState, token=victim_token, path="/profile")
    run(victim_view.on_load())
    attacker = make_state(ProfileState, token=attacker_token, path="/profile")
    attacker.phone_number, attacker.invite_code = victim_view.phone_number, victim_view.invite_code
    run(attacker.on_load())
    assert attacker.phone_number == "+79123456780"


def test_logout_without_a_session_is_harmless(db):
    state = make_state(ProfileState, token="made-up")
    events = run(state.logout())
    assert event_name(events[-1]) == "_call_script"
