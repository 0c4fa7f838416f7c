"""Every page and state at 375 and 1440 px, in English and Russian, light and dark, saved to
screenshots/ (git-ignored) to be looked at; each must fit its width with no sideways scroll."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from referral_app.domain import auth, referrals
from referral_app.domain.clock import utcnow
from referral_app.i18n import translate
from tests.e2e.conftest import screenshot
from tests.e2e.test_journey import new_phone


@pytest.fixture(scope="module")
def inviter(app_db):
    phone = new_phone()
    issued = auth.request_code(app_db, phone, "127.0.0.1")
    return auth.sign_in(app_db, phone, issued.code).invite_code


def _shoot(page, name: str, width: int) -> None:
    page.wait_for_timeout(300)  # let transitions (toasts, focus rings) settle
    assert page.evaluate("document.documentElement.scrollWidth") <= width, name
    screenshot(page, name)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("locale", ["en-US", "ru-RU"])
@pytest.mark.parametrize("width", [375, 1440])
def test_every_page_and_state(base_url, new_context, app_db, inviter, width, locale, scheme):
    language = locale[:2]
    tag = f"{language}-{scheme}-{width}"
    page = new_context(width=width, height=812 if width == 375 else 900, locale=locale, color_scheme=scheme).new_page()

    page.goto(base_url + "/")
    expect(page.locator("h1")).to_have_text(translate("login.heading", language))
    _shoot(page, f"01-login-{tag}", width)

    page.goto(f"{base_url}/?ref={inviter}")
    expect(page.locator("#invited-notice")).to_be_visible()
    _shoot(page, f"02-login-invited-{tag}", width)

    page.goto(f"{base_url}/?session=ended&ref=ZZZZZZ")
    expect(page.locator("#invited-notice")).to_be_visible()
    _shoot(page, f"03-login-session-ended-unknown-code-{tag}", width)

    page.goto(base_url + "/")
    page.fill("#phone-input", "12ab")
    page.click("#request-code-button")
    expect(page.locator("#error-message")).to_be_visible()
    _shoot(page, f"04-login-error-{tag}", width)

    page.fill("#phone-input", new_phone())
    page.click("#request-code-button")
    code = page.locator("#demo-code").inner_text()
    _shoot(page, f"05-code-{tag}", width)
    wrong = [c for c in ("1111", "2222", "3333", "4444", "5555", "6666") if c != code][:5]
    for guess in wrong:
        page.fill("#code-input", guess)
        page.wait_for_timeout(200)
    expect(page.locator("#error-message")).to_have_text(translate("code.too_many_attempts", language))
    _shoot(page, f"06-code-dead-{tag}", width)

    page.get_by_role("button", name=translate("login.change_phone", language)).click()
    page.fill("#phone-input", new_phone())
    page.click("#request-code-button")
    page.fill("#code-input", page.locator("#demo-code").inner_text())
    page.wait_for_url(re.compile(r"/profile"))
    expect(page.locator("#qr-code")).to_be_visible()
    _shoot(page, f"07-profile-new-{tag}", width)

    page.fill("#activate-input", "ZZZZZZ")
    page.click("#activate-button")
    expect(page.locator("#error-message")).to_be_visible()
    _shoot(page, f"08-profile-activation-error-{tag}", width)

    own = page.locator("#invite-code").inner_text()
    start = utcnow() - timedelta(days=1)
    for i in range(3):
        phone = new_phone()
        issued = auth.request_code(app_db, phone, "127.0.0.1")
        user = auth.sign_in(app_db, phone, issued.code)
        referrals.activate_invite(app_db, user.id, own, now=start + timedelta(hours=12 * i))
    page.fill("#activate-input", inviter)
    page.click("#activate-button")
    expect(page.locator("#activated-code")).to_have_text(inviter)
    page.reload()
    expect(page.locator("#referral-count")).to_have_text("3")
    _shoot(page, f"09-profile-full-{tag}", width)

    page.goto(base_url + "/no/such/page")
    expect(page.locator("h1")).to_have_text(translate("not_found.heading", language))
    _shoot(page, f"10-not-found-{tag}", width)
