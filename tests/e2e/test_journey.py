"""The whole referral flow in Chromium, against the app as `make run` starts it."""

from __future__ import annotations

import itertools
import re
import time
from datetime import timedelta

from playwright.sync_api import expect
from sqlmodel import select

from referral_app.infra.cookies import BINDING_STORAGE_KEY, SESSION_COOKIE
from referral_app.domain import auth, referrals
from referral_app.domain.clock import utcnow
from referral_app.domain.phones import format_phone, keep_together, mask_phone
from referral_app.i18n import translate
from referral_app.models import AuthSession, User
from tests.e2e.conftest import screenshot

_numbers = itertools.count(1000)


def new_phone() -> str:
    return f"+7912{next(_numbers):07d}"


def sign_in(page, base_url: str, phone: str, path: str = "/") -> None:
    """Sign in through the UI and wait for the profile (the code field signs in by itself)."""
    page.goto(base_url + path)
    page.fill("#phone-input", phone)
    page.click("#request-code-button")
    code = page.locator("#demo-code").inner_text()
    page.fill("#code-input", code)
    page.wait_for_url(re.compile(r"/profile"))
    expect(page.locator("#invite-code")).to_have_text(re.compile(r"^[2-9A-HJ-NP-Z]{6}$"))


def test_two_users_full_journey(base_url, new_context):
    alice_page = new_context().new_page()
    page_errors: list[str] = []
    alice_page.on("pageerror", lambda error: page_errors.append(str(error)))
    alice_page.on("console", lambda message: message.type == "error" and page_errors.append(message.text))
    frames: list[str] = []
    alice_page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: frames.append(str(frame))))
    alice_phone, bob_phone = new_phone(), new_phone()

    alice_page.goto(base_url + "/")
    screenshot(alice_page, "login-1440")
    sign_in(alice_page, base_url, alice_phone)
    alice_code = alice_page.locator("#invite-code").inner_text()
    expect(alice_page.locator("#share-link")).to_have_text(f"{base_url}/?ref={alice_code}")
    expect(alice_page.locator("#referral-count")).to_have_text("0")
    screenshot(alice_page, "profile-new-1440")

    bob = new_context(width=375, height=812).new_page()
    bob.goto(f"{base_url}/?ref={alice_code.lower()}")
    invited = translate("login.invited_by", phone=keep_together(mask_phone(alice_phone)), code=alice_code)
    expect(bob.locator("#invited-notice")).to_have_text(invited)
    screenshot(bob, "login-invited-375")
    bob.fill("#phone-input", bob_phone)
    bob.click("#request-code-button")
    expect(bob.locator("#demo-code")).to_have_text(re.compile(r"^\d{4}$"))
    screenshot(bob, "code-375")
    bob.fill("#code-input", bob.locator("#demo-code").inner_text())
    bob.wait_for_url(re.compile(r"/profile/?\?ref="))
    expect(bob.locator("#activate-input")).to_have_value(alice_code)
    screenshot(bob, "profile-prefilled-375")
    bob.click("#activate-button")
    expect(bob.locator("#activated-code")).to_have_text(alice_code)
    expect(bob.locator("#invited-by")).to_have_text(mask_phone(alice_phone))  # someone else's: masked
    expect(bob.locator("#activate-input")).to_have_count(0)
    screenshot(bob, "profile-activated-375")

    alice_page.reload()
    expect(alice_page.locator("#referral-count")).to_have_text("1")
    items = alice_page.locator("#referral-list [data-testid=referral-item]")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text(mask_phone(bob_phone))
    expect(alice_page.locator("body")).not_to_contain_text(bob_phone)
    expect(alice_page.locator("body")).not_to_contain_text(format_phone(bob_phone))
    expect(alice_page.get_by_text(format_phone(alice_phone))).to_be_visible()  # one's own: whole
    screenshot(alice_page, "profile-with-referral-1440")

    token = next(c["value"] for c in alice_page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert frames, "the page should talk to the backend over the websocket"
    assert not any(token in frame for frame in frames)
    assert page_errors == []


def test_session_survives_reload_and_new_tab(base_url, new_context):
    context = new_context()
    page = context.new_page()
    sign_in(page, base_url, new_phone())
    code = page.locator("#invite-code").inner_text()
    page.reload()
    expect(page.locator("#invite-code")).to_have_text(code)
    other_tab = context.new_page()
    other_tab.goto(base_url + "/profile")
    expect(other_tab.locator("#invite-code")).to_have_text(code)
    other_tab.goto(base_url + "/")
    other_tab.wait_for_url(re.compile(r"/profile"))


def test_session_cookie_is_http_only(base_url, new_context):
    page = new_context().new_page()
    sign_in(page, base_url, new_phone())
    cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert SESSION_COOKIE not in page.evaluate("document.cookie")


def test_the_sign_in_page_sends_nothing_while_it_leaves(base_url, new_context):
    """After the cookie exchange the sign-in page only leaves. An event sent on the way out
    reconnected its websocket with the tab's token; that connection's hydrate, cancelled as
    the page unloaded, could keep the tab's Redis state lock and stall the profile for 10 s."""
    page = new_context().new_page()
    page.goto(base_url + "/")
    page.fill("#phone-input", new_phone())
    page.click("#request-code-button")
    code = page.locator("#demo-code").inner_text()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    # Hold the profile's document back, so the leaving page lives on for a moment.
    page.route(re.compile(r"/profile/?(\?.*)?$"), lambda route: (time.sleep(0.5), route.continue_()))
    page.fill("#code-input", code)
    page.wait_for_url(re.compile(r"/profile"))
    expect(page.locator("#invite-code")).to_have_text(re.compile(r"^[2-9A-HJ-NP-Z]{6}$"))
    assert len(sockets) == 1, sockets  # the profile's own


def test_a_failed_cookie_exchange_starts_over_in_the_ui(base_url, new_context):
    page = new_context().new_page()
    page.goto(base_url + "/")
    page.fill("#phone-input", new_phone())
    page.click("#request-code-button")
    code = page.locator("#demo-code").inner_text()
    page.route("**/api/v1/auth/browser_session/", lambda route: route.fulfill(status=503))
    page.fill("#code-input", code)
    expect(page.locator("#error-message")).to_have_text(translate("error.unknown"))
    expect(page.locator("#phone-input")).to_be_visible()
    assert "/profile" not in page.url


def test_logout_ends_the_session(base_url, new_context, browser):
    page = new_context().new_page()
    sign_in(page, base_url, new_phone())
    cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    binding = page.evaluate(f"localStorage.getItem({BINDING_STORAGE_KEY!r})")  # the cookie counts only with it
    page.click("#logout-button")
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator("#phone-input")).to_be_visible()
    page.goto(base_url + "/profile")
    page.wait_for_url(re.compile(r"/$"))

    # The old token is dead on the server, not just forgotten by this browser.
    replay = new_context()
    replay.add_cookies([cookie])
    replay.add_init_script(f"localStorage.setItem({BINDING_STORAGE_KEY!r}, {binding!r})")
    stale = replay.new_page()
    stale.goto(base_url + "/profile")
    stale.wait_for_url(re.compile(r"/\?session=ended$"))  # a cookie of a session that ended
    expect(stale.locator("#phone-input")).to_be_visible()


def test_wrong_code_shows_an_error(base_url, new_context):
    page = new_context().new_page()
    page.goto(base_url + "/")
    page.fill("#phone-input", new_phone())
    page.click("#request-code-button")
    code = page.locator("#demo-code").inner_text()
    page.fill("#code-input", "0000" if code != "0000" else "1111")
    expect(page.locator("#error-message")).to_have_text(translate("code.wrong"))
    screenshot(page, "login-wrong-code-1440")
    assert "/profile" not in page.url


def test_invalid_phone_shows_an_error(base_url, new_context):
    page = new_context(width=375, height=812).new_page()
    page.goto(base_url + "/")
    page.fill("#phone-input", "12ab")
    page.click("#request-code-button")
    expect(page.locator("#error-message")).to_have_text(translate("phone.invalid"))
    expect(page.locator("#code-input")).to_have_count(0)
    screenshot(page, "login-bad-phone-375")


def test_own_code_is_refused_in_the_ui(base_url, new_context):
    page = new_context().new_page()
    sign_in(page, base_url, new_phone())
    page.fill("#activate-input", page.locator("#invite-code").inner_text())
    page.click("#activate-button")
    expect(page.locator("#error-message")).to_have_text(translate("invite.own"))
    screenshot(page, "profile-own-code-1440")


def test_copy_button_puts_the_code_on_the_clipboard(base_url, new_context):
    context = new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page = context.new_page()
    sign_in(page, base_url, new_phone())
    page.click("#copy-invite-button")
    expect(page.get_by_text(translate("profile.code_copied"))).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == page.locator("#invite-code").inner_text()


def test_long_referral_list_loads_more(base_url, new_context, app_db):
    page = new_context(width=375, height=812).new_page()
    sign_in(page, base_url, new_phone())
    code = page.locator("#invite-code").inner_text()
    start = utcnow() - timedelta(hours=1)
    phones = [new_phone() for _ in range(25)]
    for i, phone in enumerate(phones):
        issued = auth.request_code(app_db, phone, "127.0.0.1")
        user = auth.sign_in(app_db, phone, issued.code)
        referrals.activate_invite(app_db, user.id, code, now=start + timedelta(seconds=i))
    page.reload()
    expect(page.locator("#referral-count")).to_have_text("25")
    items = page.locator("#referral-list [data-testid=referral-item]")
    expect(items).to_have_count(20)
    expect(items.first).to_contain_text(mask_phone(phones[-1]))
    page.click("#load-more-button")
    expect(items).to_have_count(25)
    expect(items.last).to_contain_text(mask_phone(phones[0]))
    expect(page.locator("#load-more-button")).to_have_count(0)
    screenshot(page, "profile-long-list-375")


def test_pages_fit_a_phone_screen(base_url, new_context):
    page = new_context(width=375, height=812).new_page()
    page.goto(base_url + "/")
    expect(page.locator("#phone-input")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    sign_in(page, base_url, new_phone())
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "profile-new-375")


def test_tokens_are_stored_hashed(base_url, new_context, app_db):
    page = new_context().new_page()
    sign_in(page, base_url, new_phone())
    token = next(c["value"] for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    hashes = app_db.exec(select(AuthSession.token_hash)).all()
    phones = app_db.exec(select(User.phone_number)).all()
    app_db.rollback()
    assert token not in hashes and phones
