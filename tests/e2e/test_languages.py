"""Each person's language (SPEC §8), in Chromium: a Russian and an English browser on the
same server, the switch, and that the choice survives a reload, a new tab and a sign-in."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlmodel import delete

from referral_app.domain import auth, referrals
from referral_app.domain.clock import utcnow
from referral_app.i18n import LANGUAGE_COOKIE, translate, translate_plural
from referral_app.models import CodeSend
from tests.e2e.conftest import screenshot
from tests.e2e.test_journey import new_phone, sign_in


def browser_page(new_context, locale: str, width: int = 1440):
    context = new_context(width=width, height=900, locale=locale)
    return context, context.new_page()


@pytest.mark.parametrize(("locale", "language"), [("ru-RU", "ru"), ("en-US", "en")])
def test_the_browser_language_picks_the_page_language(base_url, new_context, locale, language):
    _, page = browser_page(new_context, locale)
    page.goto(base_url + "/")
    expect(page.locator("h1")).to_have_text(translate("login.heading", language))
    expect(page.locator("#request-code-button")).to_have_text(translate("login.request_code", language))
    expect(page).to_have_title(translate("title.login", language))
    assert page.evaluate("document.documentElement.lang") == language
    expect(page.locator("#language-switch")).to_have_value(language)
    # Errors follow too, at their field.
    page.fill("#phone-input", "12ab")
    page.click("#request-code-button")
    expect(page.locator("#error-message")).to_have_text(translate("phone.invalid", language))


def test_the_first_paint_is_never_in_another_language(base_url, new_context):
    """A Russian browser never sees the prerendered English page: it stays hidden until its
    texts arrive (or 3 s), and <html lang> is right before anything is painted."""
    _, page = browser_page(new_context, "ru-RU")
    # Kept in the page: an exposed function's calls arrive asynchronously, possibly after the check.
    page.add_init_script(
        """window.__seen = [];
           new MutationObserver(() => {
             const body = document.body;
             if (body && getComputedStyle(body).visibility === 'visible' && body.innerText.trim())
               window.__seen.push(body.innerText.slice(0, 200));
           }).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});"""
    )
    page.goto(base_url + "/")
    expect(page.locator("h1")).to_have_text(translate("login.heading", "ru"))
    seen = page.evaluate("window.__seen")
    assert seen and not [text for text in seen if translate("login.heading", "en") in text], seen[:3]


def forget_sends(app_db, phone: str) -> None:
    """Lift the send cooldown of ``phone`` (the test signs the same person in twice)."""
    app_db.exec(delete(CodeSend).where(CodeSend.phone_number == phone))
    app_db.commit()


def test_the_switch_takes_effect_at_once_and_survives_reload_new_tab_and_sign_in(base_url, new_context, app_db):
    context, page = browser_page(new_context, "en-US", width=375)
    page.goto(base_url + "/")
    expect(page.locator("h1")).to_have_text(translate("login.heading", "en"))
    page.fill("#phone-input", "12ab")
    page.click("#request-code-button")
    expect(page.locator("#error-message")).to_have_text(translate("phone.invalid", "en"))
    page.select_option("#language-switch", "ru")
    expect(page.locator("h1")).to_have_text(translate("login.heading", "ru"))  # no reload
    expect(page.locator("#error-message")).to_have_text(translate("phone.invalid", "ru"))  # the error too
    expect(page).to_have_title(translate("title.login", "ru"))
    assert page.evaluate("document.documentElement.lang") == "ru"
    assert {c["name"]: c["value"] for c in context.cookies()}[LANGUAGE_COOKIE] == "ru"
    page.reload()
    expect(page.locator("h1")).to_have_text(translate("login.heading", "ru"))
    other = context.new_page()
    other.goto(base_url + "/")
    expect(other.locator("h1")).to_have_text(translate("login.heading", "ru"))
    screenshot(other, "language-switched-ru-375")

    phone = new_phone()
    sign_in(other, base_url, phone)
    expect(other.locator("h1")).to_have_text(translate("profile.heading", "ru"))
    # Kept with the account: a new browser (English, no cookie) signs in and reads Russian.
    forget_sends(app_db, phone)
    _, fresh = browser_page(new_context, "en-US")
    sign_in(fresh, base_url, phone)
    expect(fresh.locator("h1")).to_have_text(translate("profile.heading", "ru"))
    fresh.select_option("#language-switch", "en")
    expect(fresh.locator("h1")).to_have_text(translate("profile.heading", "en"))


def _invite(app_db, code: str, count: int) -> None:
    start = utcnow() - timedelta(minutes=30)
    for i in range(count):
        phone = new_phone()
        issued = auth.request_code(app_db, phone, "127.0.0.1")
        user = auth.sign_in(app_db, phone, issued.code)
        referrals.activate_invite(app_db, user.id, code, now=start + timedelta(seconds=i))


def test_plural_forms_of_the_referral_count(base_url, new_context, app_db):
    """CLDR plurals on the page: Russian one (1, 21), few (2), many (5, 11); English one/other."""
    _, ru = browser_page(new_context, "ru-RU", width=375)
    phone = new_phone()
    sign_in(ru, base_url, phone)
    # The page may still be hidden for its Russian texts: wait until the code is rendered text.
    expect(ru.locator("#invite-code")).to_have_text(re.compile(r"^\w{6}$"), use_inner_text=True)
    code = ru.locator("#invite-code").inner_text()
    forget_sends(app_db, phone)
    _, en = browser_page(new_context, "en-US")
    sign_in(en, base_url, phone)
    total = 0
    for count in (1, 2, 5, 11, 21):
        _invite(app_db, code, count - total)
        total = count
        for page, language in ((ru, "ru"), (en, "en")):
            page.reload()
            expect(page.locator("#referral-count")).to_have_text(str(count))
            expect(page.locator("#referral-summary")).to_have_text(
                translate_plural("profile.referral_summary", count, language)
            )
    expect(ru.locator("#referral-summary")).to_have_text("21 друг пришёл по вашему коду")
    first = ru.locator("#referral-list time").first
    expect(first).to_have_text(re.compile(r"минут(у|ы)? назад$"))  # relative, in Russian
    assert re.search(r"\d{4}", first.get_attribute("title"))  # the exact time on hover
    screenshot(ru, "profile-plurals-ru-375")


def test_the_404_page_is_in_the_persons_language(base_url, new_context):
    for locale, language in (("ru-RU", "ru"), ("en-US", "en")):
        _, page = browser_page(new_context, locale)
        response = page.goto(base_url + "/no/such/page")
        assert response.status == 404
        expect(page.locator("h1")).to_have_text(translate("not_found.heading", language))
        expect(page).to_have_title(translate("title.not_found", language))
        screenshot(page, f"not-found-{language}-1440")


def test_the_sms_text_is_in_the_language_of_the_page(app_server, new_context):
    """The demo gateway logs each SMS it "sends" (demo mode only): the text is Russian."""
    _, page = browser_page(new_context, "ru-RU")
    phone = new_phone()
    page.goto(app_server.url + "/")
    page.fill("#phone-input", phone)
    page.click("#request-code-button")
    code = page.locator("#demo-code").inner_text()
    expected = translate_plural("sms.code", 5, "ru", code=code, minutes=5)
    for _ in range(50):
        if expected in app_server.log.read_text(encoding="utf-8"):
            break
        page.wait_for_timeout(100)
    assert f"demo SMS to {phone}: {expected}" in app_server.log.read_text(encoding="utf-8")
