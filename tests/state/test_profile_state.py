"""ProfileState handlers, called directly: every one re-checks the session on the server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from referral_app.domain import referrals, sessions
from referral_app.domain.clock import utcnow
from referral_app.i18n import translate
from referral_app.models import AuthSession, User
from referral_app.settings import settings
from referral_app.state.profile import ProfileState
from tests.state.conftest import client_view, event_arg, event_name, make_state, run, sign_up


# SQLite serialises transactions (BEGIN IMMEDIATE), so the test's own session ends
# each read with a rollback before the state's handlers open theirs.


def users_snapshot(db) -> list[tuple]:
    rows = db.exec(
        select(User.id, User.phone_number, User.invite_code, User.invited_by_id, User.activated_at, User.invited_count)
        .order_by(User.id)
    ).all()
    db.rollback()
    return [tuple(row) for row in rows]


def loaded(token: str, **kwargs) -> ProfileState:
    state = make_state(ProfileState, token=token, path="/profile", **kwargs)
    run(state.on_load())
    return state


def invite_code_of(db, user_id: int) -> str:
    code = db.exec(select(User.invite_code).where(User.id == user_id)).one()
    db.rollback()
    return code


@pytest.mark.parametrize("token", [None, "", "not-a-token", "x" * 10_000])
def test_without_a_live_session_the_profile_redirects_to_sign_in(db, token):
    """With a session cookie that no longer works, the sign-in page is told the session ended."""
    state = make_state(ProfileState, token=token, path="/profile")
    events = run(state.on_load())
    assert [event_name(e) for e in events] == ["_redirect"]
    assert event_arg(events[0], "path") == ("/" if not token else "/?session=ended")  # an empty cookie is none
    assert state.loaded is False and state.invite_code == ""


def test_revoked_and_expired_sessions_are_refused(db, user):
    user_id, token = user
    sessions.revoke_session(db, token)
    assert run(make_state(ProfileState, token=token).on_load())[0].handler.fn.__qualname__ == "_redirect"
    expired = sessions.create_session(db, user_id, now=utcnow() - timedelta(days=settings.session_ttl_days + 1))
    assert event_name(run(make_state(ProfileState, token=expired).on_load())[0]) == "_redirect"


def test_profile_shows_own_code_share_link_and_empty_list(db, user):
    user_id, token = user
    state = loaded(token)
    code = invite_code_of(db, user_id)
    assert state.loaded and state.phone_number == "+79123456789"
    assert state.invite_code == code
    assert state.share_link == f"http://127.0.0.1:3000/?ref={code}"
    assert state.invited_count == 0 and state.referrals == [] and state.next_cursor == ""
    assert state.activated_code == "" and state.invited_by == ""


def test_ref_parameter_prefills_the_activation_code_but_not_ones_own(db, user):
    user_id, token = user
    assert loaded(token, query={"ref": "abc-def"}).prefill_code == "ABCDEF"
    assert loaded(token, query={"ref": invite_code_of(db, user_id)}).prefill_code == ""


def test_activation_shows_inviter_and_updates_the_inviters_count(db, user):
    owner_id, owner_token = user
    _, token = sign_up(db, "+79123456780")
    state = loaded(token)
    events = run(state.activate({"invite_code": invite_code_of(db, owner_id).lower()}))
    assert state.error_text == ""
    assert state.activated_code == invite_code_of(db, owner_id)
    assert state.invited_by == "+7 *** ***-67-89"  # someone else's number: masked
    assert any(event_name(e) == "_call_function" or "toast" in str(e) for e in events)
    owner_view = loaded(owner_token)
    assert owner_view.invited_count == 1
    assert owner_view.referrals[0]["phone_number"] == "+7 *** ***-67-80"


@pytest.mark.parametrize(
    "code, message_id",
    [
        ("", "invite.required"),
        ("ZZZZZZ", "invite.unknown"),
        ("O0O0O0", "invite.format"),
        ("'; DROP TABLE users; --", "invite.format"),
        ("😀" * 6, "invite.format"),
        ("A" * 10_000, "invite.format"),
        (None, "invite.format"),
        (["ABCDEF"], "invite.format"),
    ],
)
def test_bad_invite_codes_give_a_message_and_change_nothing(db, user, code, message_id):
    _, token = user
    sign_up(db, "+79123456780")
    state = loaded(token)
    before = users_snapshot(db)
    run(state.activate({"invite_code": code}))
    assert state.error_text == translate(message_id)
    assert state.activating is False
    assert users_snapshot(db) == before


def test_own_code_and_second_activation_are_refused(db, user):
    owner_id, _ = user
    other_id, token = sign_up(db, "+79123456780")
    third_id, _ = sign_up(db, "+79123456781")
    state = loaded(token)
    run(state.activate({"invite_code": invite_code_of(db, other_id)}))
    assert state.error_text == translate("invite.own")
    run(state.activate({"invite_code": invite_code_of(db, owner_id)}))
    before = users_snapshot(db)
    assert state.activated_code == invite_code_of(db, owner_id)
    # A second activation from this page (a double click, a double Enter) does nothing at all.
    assert run(state.activate({"invite_code": invite_code_of(db, third_id)})) == []
    assert state.error_text == "" and state.activated_code == invite_code_of(db, owner_id)
    assert users_snapshot(db) == before
    # A page that missed the first one (another tab) gets the rule's message.
    other_tab = loaded(token)
    other_tab.activated_code = ""
    run(other_tab.activate({"invite_code": invite_code_of(db, third_id)}))
    assert other_tab.error_text == translate("invite.already_activated")
    assert users_snapshot(db) == before


def test_activating_without_a_session_changes_nothing(db, user):
    owner_id, _ = user
    sign_up(db, "+79123456780")
    state = make_state(ProfileState, token="stolen-or-made-up")
    before = users_snapshot(db)
    events = run(state.activate({"invite_code": invite_code_of(db, owner_id)}))
    assert event_name(events[-1]) == "_redirect"
    assert users_snapshot(db) == before


def test_session_is_rechecked_on_every_event(db, user):
    owner_id, _ = user
    _, token = sign_up(db, "+79123456780")
    state = loaded(token)
    sessions.revoke_session(db, token)
    before = users_snapshot(db)
    events = run(state.activate({"invite_code": invite_code_of(db, owner_id)}))
    assert event_name(events[-1]) == "_redirect"
    assert users_snapshot(db) == before
    assert state.loaded is False


def test_load_more_walks_the_referral_list_newest_first(db, user, monkeypatch):
    monkeypatch.setattr(settings, "referral_page_size", 20)
    owner_id, owner_token = user
    code = invite_code_of(db, owner_id)
    start = utcnow()
    for i in range(25):
        invited_id, _ = sign_up(db, f"+7912345{i:04d}")
        referrals.activate_invite(db, invited_id, code, now=start + timedelta(seconds=i))
    state = loaded(owner_token)
    assert state.invited_count == 25
    assert len(state.referrals) == 20 and state.next_cursor
    run(state.load_more())
    phones = [row["phone_number"] for row in state.referrals]
    assert phones == [f"+7 *** ***-{i:04d}"[:-2] + "-" + f"{i:02d}" for i in reversed(range(25))]
    assert state.next_cursor == ""
    assert run(state.load_more()) == []


def test_logout_revokes_the_session_and_drops_the_cookie(db, user):
    _, token = user
    state = loaded(token)
    events = run(state.logout())
    script = next(e for e in events if event_name(e) == "_call_script")
    assert '"DELETE"' in event_arg(script, "javascript_code")
    assert db.exec(select(AuthSession.revoked_at)).one() is not None
    assert state.loaded is False and state.invite_code == ""


def test_no_secret_ever_reaches_the_client(db, user):
    owner_id, owner_token = user
    _, token = sign_up(db, "+79123456780")
    state = loaded(token)
    run(state.activate({"invite_code": invite_code_of(db, owner_id)}))
    owner = loaded(owner_token)
    views = client_view(state) + client_view(owner)
    secrets = [token, owner_token, settings.secret_key]
    secrets += db.exec(select(AuthSession.token_hash)).all()
    for secret in secrets:
        assert secret not in views
