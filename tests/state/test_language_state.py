"""The person's language in the page state: choice (cookie, then account), then
Accept-Language, then DEFAULT_LANGUAGE; the switch; and texts that follow it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import select

from referral_app.domain import referrals
from referral_app.domain.clock import utcnow
from referral_app.i18n import LANGUAGE_COOKIE, catalogue, translate, translate_plural
from referral_app.infra.cookies import SESSION_COOKIE
from referral_app.models import User
from referral_app.settings import settings
from referral_app.state.login import LoginState
from referral_app.state.profile import ProfileState, qr_code_svg, share_link
from tests.state.conftest import event_arg, event_name, make_state, run, sign_up


def with_headers(state, **headers):
    """Add request headers (as the websocket brought them) to a state made by make_state."""
    from reflex.istate.data import RouterData

    current = dict(state.router.headers.raw_headers)
    current.update({key.replace("_", "-"): value for key, value in headers.items()})
    state.router = RouterData.from_router_data(
        {"headers": current, "pathname": state.router.url.path, "asPath": state.router.url.path, "query": {}}
    )
    return state


def settle(state) -> None:
    """What Reflex does after each event: mark the computed vars whose inputs changed."""
    root = state
    while root.parent_state is not None:
        root = root.parent_state
    root.get_delta()


def loaded_login(accept_language=None, cookie=None, token=None):
    state = make_state(LoginState, token=token)
    if accept_language:
        with_headers(state, accept_language=accept_language)
    if cookie:
        state.language_choice = cookie
    events = run(state.on_load())
    return state, events


def test_the_browser_language_is_used_when_nobody_chose(db):
    state, events = loaded_login("ru-RU,ru;q=0.9,en;q=0.8")
    assert state.language == "ru" and state.messages == catalogue("ru")
    script = event_arg(events[0], "javascript_code")
    assert json.dumps("ru") in script and "i18n-pending" in script  # <html lang>, then the page shows
    state, _ = loaded_login("fr-FR")
    assert state.language == settings.default_language


def test_the_choice_beats_the_browser(db):
    state, _ = loaded_login("ru-RU", cookie="en")
    assert state.language == "en"
    state, _ = loaded_login("en-US", cookie="xx")  # not a language we have: no choice
    assert state.language == "en"


def test_the_switch_sets_the_cookie_and_the_texts_at_once(db):
    state, _ = loaded_login("en-US")
    run(state.switch_language("ru"))
    assert state.language_choice == "ru" and state.language == "ru"
    assert state.messages["login.heading"] == translate("login.heading", "ru")
    run(state.request_code({"phone": "12"}))
    assert state.error_text == translate("phone.invalid", "ru")
    run(state.switch_language("en"))
    settle(state)
    assert state.error_text == translate("phone.invalid", "en")  # the shown error follows


@pytest.mark.parametrize("bad", ["xx", "", None, 7, ["ru"], "ru" * 1000])
def test_the_switch_refuses_what_is_no_language(db, bad):
    state, _ = loaded_login("en-US")
    assert run(state.switch_language(bad)) == []
    assert state.language == "en" and state.language_choice == ""


def test_signed_in_the_choice_is_kept_on_the_account(db):
    user_id, token = sign_up(db, "+79123456789")
    state = make_state(ProfileState, token=token, path="/profile")
    run(state.on_load())
    run(state.switch_language("ru"))
    assert db.exec(select(User.language).where(User.id == user_id)).one() == "ru"
    db.rollback()
    # Another browser, English, with no cookie: the account's choice wins over Accept-Language.
    other = with_headers(make_state(ProfileState, token=token, path="/profile"), accept_language="en-US")
    run(other.on_load())
    assert other.language == "ru" and other.language_choice == "ru"


def test_the_choice_made_before_signing_in_goes_with_the_account(db):
    state = make_state(LoginState)
    run(state.on_load())
    run(state.switch_language("ru"))
    run(state.request_code({"phone": "+79123456789"}))
    run(state.confirm_code({"code": state.demo_code}))
    assert db.exec(select(User.language)).one() == "ru"
    db.rollback()


def test_the_sms_is_in_the_language_of_the_page(db):
    from referral_app.domain.sms import sms_sender

    state, _ = loaded_login("ru-RU")
    run(state.request_code({"phone": "+79123456789"}))
    minutes = settings.code_ttl_seconds // 60
    assert sms_sender.outbox[-1][1] == translate_plural("sms.code", minutes, "ru", code=state.demo_code, minutes=minutes)


def test_the_profile_renders_in_the_language_and_masks_other_people(db):
    owner_id, owner_token = sign_up(db, "+79123456789")
    code = db.exec(select(User.invite_code).where(User.id == owner_id)).one()
    db.rollback()
    start = utcnow() - timedelta(minutes=5)
    for i in range(2):
        invited_id, _ = sign_up(db, f"+7912000000{i}")
        referrals.activate_invite(db, invited_id, code, now=start)
    state = with_headers(make_state(ProfileState, token=owner_token, path="/profile"), accept_language="ru")
    run(state.on_load())
    assert state.phone_display == "+7 912 345-67-89"  # one's own: whole, formatted
    assert state.referral_summary == "2 друга пришли по вашему коду"
    assert [row["phone_number"] for row in state.referrals] == ["+7 *** ***-00-01", "+7 *** ***-00-00"]
    assert state.referrals[0]["activated_at"] == "5 минут назад"
    assert "UTC" in state.referrals[0]["exact"]
    run(state.switch_language("en"))
    settle(state)
    assert state.referral_summary == "2 friends joined with your code"
    assert state.referrals[0]["activated_at"] == "5 minutes ago"
    view = json.dumps(state.dict(), default=str)
    assert "+79120000000" not in view and "+79120000001" not in view  # never sent to the browser


def test_the_share_link_and_its_qr_code(db, monkeypatch):
    _, token = sign_up(db, "+79123456789")
    state = make_state(ProfileState, token=token, path="/profile")
    run(state.on_load())
    assert state.share_link == f"http://127.0.0.1:3000/?ref={state.invite_code}"  # the page's own origin
    assert state.qr_code == qr_code_svg(state.share_link)
    assert state.qr_code.startswith("data:image/svg+xml")
    monkeypatch.setattr(settings, "public_url", "https://referral.example.com")
    assert share_link("http://10.0.0.5:3000", "ABCDEF") == "https://referral.example.com/?ref=ABCDEF"
    state = make_state(ProfileState, token=token, path="/profile")
    run(state.on_load())
    assert state.share_link == f"https://referral.example.com/?ref={state.invite_code}"
    assert state.share_text == translate("profile.share_text", code=state.invite_code)


@pytest.mark.parametrize(("outcome", "toast"), [("copied", True), ("failed", True), ("shared", False), ("aborted", False), (None, False), ("<x>", False)])
def test_the_share_outcome_gives_a_toast_only_when_there_is_something_to_say(db, outcome, toast):
    state = make_state(ProfileState)
    events = run(state.shared(outcome))
    assert bool(events) == toast


def test_an_ended_session_keeps_the_typed_code_through_the_sign_in(db):
    owner_id, _ = sign_up(db, "+79123456789")
    code = db.exec(select(User.invite_code).where(User.id == owner_id)).one()
    _, token = sign_up(db, "+79123456780")
    db.rollback()
    from referral_app.domain import sessions

    state = make_state(ProfileState, token=token, path="/profile")
    run(state.on_load())
    sessions.revoke_session(db, token)
    events = run(state.activate({"invite_code": code.lower()}))
    assert [event_name(e) for e in events] == ["_redirect"]
    assert event_arg(events[0], "path") == f"/?session=ended&ref={code}"
    # The sign-in page, then the profile, carry the code on.
    login = make_state(LoginState, query={"session": "ended", "ref": code})
    run(login.on_load())
    assert login.session_ended and login.ref_code == code
    assert login._profile_url() == f"/profile/?ref={code}"


def test_the_language_cookie_is_not_the_session_cookie():
    assert LANGUAGE_COOKIE != SESSION_COOKIE


def test_exact_times_use_the_browsers_time_zone(db):
    from referral_app.i18n import TIMEZONE_COOKIE

    owner_id, owner_token = sign_up(db, "+79123456789")
    code = db.exec(select(User.invite_code).where(User.id == owner_id)).one()
    db.rollback()
    invited_id, _ = sign_up(db, "+79120000000")
    from datetime import UTC, datetime

    referrals.activate_invite(db, invited_id, code, now=datetime(2026, 11, 29, 17, 15, tzinfo=UTC))
    state = make_state(ProfileState, token=owner_token, path="/profile")
    cookie = f"{SESSION_COOKIE}={owner_token}; {TIMEZONE_COOKIE}=Europe%2FMoscow"
    with_headers(state, cookie=cookie)
    run(state.on_load())
    assert state.referrals[0]["exact"] == "Nov 29, 2026, 8:15\u202fPM"
    forged = with_headers(make_state(ProfileState, token=owner_token, path="/profile"),
                          cookie=f"{SESSION_COOKIE}={owner_token}; {TIMEZONE_COOKIE}=%3Cscript%3E")
    run(forged.on_load())
    assert forged.referrals[0]["exact"].endswith("UTC")
