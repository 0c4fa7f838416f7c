"""The admin in Chromium: a staff member finds a user by phone and revokes their session."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from referral_app.domain import sessions, staff
from referral_app.models import AuthSession, User
from tests.e2e.conftest import screenshot
from tests.e2e.test_journey import new_phone, sign_in

STAFF_PASSWORD = "an e2e staff password"
WHEN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")
E164 = re.compile(r"^\+\d{8,15}$")


def column(page, header: str) -> list[str]:
    """The texts of one column of the list table, found by its header."""
    headers = [text.strip() for text in page.locator("table thead th").all_inner_texts()]
    index = headers.index(header)
    return [text.strip() for text in page.locator(f"table tbody tr td:nth-child({index + 1})").all_inner_texts()]


def staff_login(page, base_url: str, username: str) -> None:
    page.goto(base_url + "/admin/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", STAFF_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/admin/dashboard$"))  # where staff land


def search(page, term: str) -> None:
    page.fill("#search-input", term)
    page.click("#search-button")
    page.wait_for_url(re.compile(r"search="))


def test_staff_finds_a_user_by_phone_and_revokes_their_session(base_url, new_context, app_db):
    username = f"staff_{uuid.uuid4().hex[:8]}"
    staff.create_staff(app_db, username, STAFF_PASSWORD)
    app_db.rollback()

    # A user signs in in their own browser: that is the session to revoke.
    user_page = new_context().new_page()
    phone = new_phone()
    sign_in(user_page, base_url, phone)
    invite_code = user_page.locator("#invite-code").inner_text()
    user_id = app_db.exec(select(User.id).where(User.phone_number == phone)).one()
    session_ids = app_db.exec(select(AuthSession.id).where(AuthSession.user_id == user_id)).all()
    app_db.rollback()
    assert len(session_ids) == 1

    admin_page = new_context().new_page()
    page_errors: list[str] = []
    admin_page.on("pageerror", lambda error: page_errors.append(str(error)))
    admin_page.goto(base_url + "/admin/user/list")
    admin_page.wait_for_url(re.compile(r"/admin/login$"))  # nothing without a login
    staff_login(admin_page, base_url, username)
    admin_cookie = next(c for c in admin_page.context.cookies() if c["name"] == "referral_admin")
    assert admin_cookie["httpOnly"] and admin_cookie["sameSite"] == "Lax"

    # Users: search by phone, open the user.
    admin_page.click("a:has-text('Users')")
    admin_page.wait_for_url(re.compile(r"/admin/user/list"))
    search(admin_page, phone)
    expect(admin_page.locator("table tbody tr")).to_have_count(1)
    assert column(admin_page, "Phone") == [phone]
    assert column(admin_page, "Invite code") == [invite_code]
    admin_page.locator(f"table tbody tr a[href$='/admin/user/details/{user_id}']").first.click()
    admin_page.wait_for_url(re.compile(rf"/admin/user/details/{user_id}$"))
    expect(admin_page.locator("table")).to_contain_text(phone)
    expect(admin_page.locator("table")).to_contain_text(invite_code)
    screenshot(admin_page, "admin-user-details")

    # Sessions: search by the user's phone, select the session, run Revoke, confirm.
    admin_page.click("a:has-text('Sessions')")
    admin_page.wait_for_url(re.compile(r"/admin/session/list"))
    search(admin_page, phone)
    rows = admin_page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    assert column(admin_page, "ID") == [str(session_ids[0])]
    assert column(admin_page, "Revoked") == ["—"]
    rows.first.locator("input.select-box").check()
    admin_page.click("#dropdownMenuButton")
    admin_page.click("#action-customconfirm-revoke")
    modal = admin_page.locator("#modal-confirmation-revoke")
    expect(modal).to_be_visible()
    expect(modal).to_contain_text("Revoke?")
    screenshot(admin_page, "admin-revoke-confirmation")
    modal.locator("#action-custom-modal-revoke").click()
    admin_page.wait_for_url(re.compile(r"/admin/session/list$"))
    search(admin_page, phone)
    [revoked_at] = column(admin_page, "Revoked")
    assert WHEN.match(revoked_at), revoked_at

    revoked = app_db.exec(select(AuthSession.revoked_at).where(AuthSession.id == session_ids[0])).one()
    app_db.rollback()
    assert revoked is not None

    # The user's browser is signed out on its next load.
    user_page.reload()
    user_page.wait_for_url(re.compile(r"/(\?session=ended)?$"))
    expect(user_page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(user_page.locator("#invite-code")).to_have_count(0)
    screenshot(user_page, "admin-revoked-user-signed-out")
    user_page.goto(base_url + "/profile")
    user_page.wait_for_url(re.compile(r"/(\?session=ended)?$"))
    expect(user_page.locator("#invite-code")).to_have_count(0)

    # "Logout" is sent as a POST with the CSRF token; the session ends on the server.
    admin_page.click("a:has-text('Logout')")
    admin_page.wait_for_url(re.compile(r"/admin/login$"))
    assert not [c for c in admin_page.context.cookies() if c["name"] == "referral_admin"]
    copied = new_context()
    copied.add_cookies([{**admin_cookie, "sameSite": "Lax"}])
    copied_page = copied.new_page()
    copied_page.goto(base_url + "/admin/user/list")
    copied_page.wait_for_url(re.compile(r"/admin/login$"))  # the cookie saved before logout opens nothing
    assert page_errors == []


def test_staff_deactivates_a_user_from_the_details_page(base_url, new_context, app_db):
    """An action without a confirmation, from a record's page: a POST with the token."""
    username = f"staff_{uuid.uuid4().hex[:8]}"
    staff.create_staff(app_db, username, STAFF_PASSWORD)
    app_db.rollback()
    user_page = new_context().new_page()
    phone = new_phone()
    sign_in(user_page, base_url, phone)
    user_id = app_db.exec(select(User.id).where(User.phone_number == phone)).one()
    app_db.rollback()

    page = new_context().new_page()
    staff_login(page, base_url, username)
    page.goto(f"{base_url}/admin/user/details/{user_id}")
    page.click("a:has-text('Deactivate')")  # opens the confirmation
    page.locator("#modal-confirmation-deactivate a:has-text('Yes')").click()
    page.wait_for_url(re.compile(r"/admin/user/list$"))
    active = app_db.exec(select(User.is_active).where(User.id == user_id)).one()
    app_db.rollback()
    assert active is False


def test_admin_list_views_are_readable(base_url, new_context, app_db):
    """Screenshots of every list view, with data in each: phones in E.164, times readable."""
    username = f"staff_{uuid.uuid4().hex[:8]}"
    staff.create_staff(app_db, username, STAFF_PASSWORD)
    app_db.rollback()
    inviter_page, invited_page = new_context().new_page(), new_context().new_page()
    sign_in(inviter_page, base_url, new_phone())
    code = inviter_page.locator("#invite-code").inner_text()
    sign_in(invited_page, base_url, new_phone(), path=f"/?ref={code}")
    invited_page.click("#activate-button")
    expect(invited_page.locator("#activated-code")).to_have_text(code)
    # A code asked for and not used yet, for the confirmation codes list.
    pending = new_context().new_page()
    pending.goto(base_url + "/")
    pending.fill("#phone-input", new_phone())
    pending.click("#request-code-button")
    expect(pending.locator("#demo-code")).to_have_text(re.compile(r"^\d{4}$"))

    page = new_context().new_page()
    staff_login(page, base_url, username)
    views = [
        ("user", "admin-users", {"Phone": E164, "Created": WHEN}),
        ("referral", "admin-referrals", {"Invited user": E164, "When": WHEN}),
        ("session", "admin-sessions", {"Created": WHEN, "Expires": WHEN}),
        ("confirmation-code", "admin-confirmation-codes", {"Phone": E164, "Created": WHEN, "Expires": WHEN}),
        ("staff-account", "admin-staff-accounts", {"Username": re.compile(r"^staff_[0-9a-f]{8}$|.+"), "Created": WHEN}),
    ]
    for identity, name, checks in views:
        page.goto(f"{base_url}/admin/{identity}/list")
        expect(page.locator("table tbody tr").first).to_be_visible()
        for header, pattern in checks.items():
            values = column(page, header)
            assert values and all(pattern.match(value) for value in values), (identity, header, values)
        body = page.content()
        assert "$2b$" not in body and "hash" not in body.lower(), identity
        # Every column fits: the table is no wider than the window.
        assert page.evaluate("document.documentElement.scrollWidth") <= 1440, identity
        screenshot(page, name)
    # Referrals show the inviter with phone and code.
    page.goto(f"{base_url}/admin/referral/list?search={code}")
    [inviter] = column(page, "Inviter")
    assert inviter.endswith(f"({code})") and E164.match(inviter.split(" ")[0])


def test_a_user_signed_out_by_staff_can_sign_in_again_in_the_same_tab(base_url, new_context, app_db):
    page = new_context().new_page()
    phone = new_phone()
    sign_in(page, base_url, phone)
    user_id = app_db.exec(select(User.id).where(User.phone_number == phone)).one()
    [session_id] = app_db.exec(select(AuthSession.id).where(AuthSession.user_id == user_id)).all()
    app_db.rollback()
    sessions.revoke_session_by_id(app_db, session_id)
    page.reload()
    page.wait_for_url(re.compile(r"/(\?session=ended)?$"))
    expect(page.locator("#phone-input")).to_be_visible(timeout=5_000)
