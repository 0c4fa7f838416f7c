"""Cookie tossing over plain HTTP, in Chromium, against the app as `make run` starts it (issue 18).

A page on http://evil.example.test:<port> (a sibling subdomain) or on another port of the
app's host sets ``referral_session`` / ``referral_admin`` for ``Domain=example.test`` or a
longer path; the browser then sends it to the app (http://app.example.test:<port>) beside
(or instead of) the app's own. It must never sign a visitor into the attacker's account,
and must cost a signed-in user or staff member at most one request
(referral_app/infra/cookies.py). The hostile pages come from tests/e2e/test_cross_origin.py.
"""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from referral_app.domain import sessions, staff
from tests.e2e.test_admin_ui import STAFF_PASSWORD, staff_login
from tests.e2e.test_cross_origin import app_origin, attacker, new_user, run_attack  # noqa: F401 (fixture)
from tests.e2e.test_journey import new_phone, sign_in


def toss(page, attacker, origin: str, cookie: str) -> None:
    run_attack(page, origin, attacker, "toss-" + uuid.uuid4().hex[:6],
               f"document.cookie = {cookie!r}; window.result = true;")


def session_cookies(page, name: str = "referral_session") -> list[tuple[str, str]]:
    return sorted((c["domain"], c["path"]) for c in page.context.cookies() if c["name"] == name)


def test_a_tossed_cookie_does_not_sign_a_signed_out_visitor_into_the_attackers_account(
    app_server, new_context, attacker, app_db
):
    """The hole: a signed-out visitor with the sibling's cookie saw the attacker's profile."""
    app = app_origin(app_server)
    attacker_id, attacker_code = new_user(app_db)
    attacker_token = sessions.create_session(app_db, attacker_id)
    app_db.rollback()
    page = new_context().new_page()
    page.goto(app + "/")
    toss(page, attacker, attacker.origins()[0], f"referral_session={attacker_token}; Domain=example.test; Path=/")
    assert session_cookies(page) == [(".example.test", "/")]  # the browser took it

    page.goto(app + "/profile")
    page.wait_for_url(re.compile(r"/$"))  # not signed in
    expect(page.locator("#phone-input")).to_be_visible()
    expect(page.locator("#invite-code")).to_have_count(0)
    assert attacker_code not in page.content()

    # Signing in now gives the visitor their own account, and the sibling's copy goes.
    sign_in(page, app, new_phone())
    assert page.locator("#invite-code").inner_text() != attacker_code
    page.reload()
    expect(page.locator("#invite-code")).to_be_visible()
    assert page.locator("#invite-code").inner_text() != attacker_code
    assert session_cookies(page) == [("app.example.test", "/")]


def test_a_signed_in_user_stays_signed_in_and_the_tossed_copies_go(app_server, new_context, attacker, app_db):
    """The lock-out: beside a sibling's copy, the app saw no session until the copy expired."""
    app = app_origin(app_server)
    attacker_id, attacker_code = new_user(app_db)
    attacker_token = sessions.create_session(app_db, attacker_id)
    app_db.rollback()
    page = new_context().new_page()
    sign_in(page, app, new_phone())
    code = page.locator("#invite-code").inner_text()
    evil, same_host_other_port = attacker.origins()
    toss(page, attacker, evil, f"referral_session={attacker_token}; Domain=example.test; Path=/; Max-Age=86400")
    toss(page, attacker, same_host_other_port,
         f"referral_session={attacker_token}; Path=/profile; Max-Age=86400")  # host-only, longer path
    toss(page, attacker, same_host_other_port,
         f"referral_session={attacker_token}; Domain=app.example.test; Path=/; Max-Age=86400")
    assert len(session_cookies(page)) == 4

    page.goto(app + "/profile")  # the request that carries the copies: still the user's own page
    expect(page.locator("#invite-code")).to_have_text(code)
    assert attacker_code not in page.content()
    assert session_cookies(page) == [("app.example.test", "/")]  # only ours is left
    page.reload()
    expect(page.locator("#invite-code")).to_have_text(code)


def _attackers_staff_cookie(app, app_db, new_context) -> tuple[str, str]:
    """(username, cookie value) of the attacker's own staff login, taken from their own browser."""
    other = f"mallory_{uuid.uuid4().hex[:8]}"
    staff.create_staff(app_db, other, STAFF_PASSWORD)
    app_db.rollback()
    own_browser = new_context().new_page()
    staff_login(own_browser, app, other)
    return other, next(c["value"] for c in own_browser.context.cookies() if c["name"] == "referral_admin")


def test_a_staff_member_with_a_tossed_cookie_is_back_after_at_most_one_request(
    app_server, new_context, attacker, app_db
):
    app = app_origin(app_server)
    username = f"staff_{uuid.uuid4().hex[:8]}"
    staff.create_staff(app_db, username, STAFF_PASSWORD)
    other, tossed = _attackers_staff_cookie(app, app_db, new_context)
    page = new_context().new_page()
    staff_login(page, app, username)
    toss(page, attacker, attacker.origins()[0], f"referral_admin={tossed}; Domain=example.test; Path=/; Max-Age=86400")
    assert len(session_cookies(page, "referral_admin")) == 2

    page.goto(app + "/admin/user/list")
    expect(page.locator("table")).to_be_visible()
    assert page.url.endswith("/admin/user/list")
    assert session_cookies(page, "referral_admin") == [("app.example.test", "/")]
    assert other not in page.content()


def test_a_tossed_staff_cookie_does_not_sign_a_signed_out_staff_member_in_as_the_attacker(
    app_server, new_context, attacker, app_db
):
    app = app_origin(app_server)
    username = f"staff_{uuid.uuid4().hex[:8]}"
    staff.create_staff(app_db, username, STAFF_PASSWORD)
    other, tossed = _attackers_staff_cookie(app, app_db, new_context)
    page = new_context().new_page()
    page.goto(app + "/admin/login")
    toss(page, attacker, attacker.origins()[0], f"referral_admin={tossed}; Domain=example.test; Path=/")

    page.goto(app + "/admin/user/list")
    page.wait_for_url(re.compile(r"/admin/login$"))  # the page saw a cookie its pages never got
    expect(page.locator("input[name=username]")).to_be_visible()

    # Logging in gives the staff member their own account; the sibling's copy goes on the way.
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/admin/dashboard$"))
    assert other not in page.content()
    assert session_cookies(page, "referral_admin") == [("app.example.test", "/")]
