"""The sign-in that guides (SPEC §7), in Chromium: the code's countdown, the resend
countdown before any click, signing in on the last digit, a dead code, errors at their
field, nothing sent twice, an ended session, and /?ref= without a layout shift."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlmodel import select, update

from referral_app.domain.phones import format_phone, keep_together, mask_phone
from referral_app.i18n import translate
from referral_app.models import AuthSession, CodeSend, User
from tests.e2e.conftest import screenshot
from tests.e2e.test_journey import new_phone, sign_in
from tests.e2e.test_languages import forget_sends


def code_step(page, base_url: str, phone: str) -> str:
    page.goto(base_url + "/")
    page.fill("#phone-input", phone)
    page.click("#request-code-button")
    return page.locator("#demo-code").inner_text()


def sends(app_db, phone: str) -> int:
    count = len(app_db.exec(select(CodeSend.id).where(CodeSend.phone_number == phone)).all())
    app_db.rollback()
    return count


def test_the_code_step_says_where_the_code_went_and_counts_down(base_url, new_context):
    page = new_context(width=375, height=812).new_page()
    phone = new_phone()
    code_step(page, base_url, phone)
    expect(page.locator("h1")).to_have_text(translate("login.code_heading"))
    expect(page.get_by_text(format_phone(phone))).to_be_visible()
    expires = page.locator("#code-expires")
    expect(expires).to_have_text(re.compile(r"\d:\d\d"))
    first = expires.inner_text()
    expect(expires).not_to_have_text(first, timeout=3000)  # it counts down by itself
    # The resend countdown shows before anyone clicks.
    resend = page.locator("#resend-code-button")
    expect(resend).to_be_disabled()
    expect(resend).to_have_text(re.compile(r"0:[0-2]\d$"))
    assert page.locator("#code-input").get_attribute("autocomplete") == "one-time-code"
    screenshot(page, "login-code-countdown-375")


def test_the_code_signs_in_by_itself_on_the_last_digit(base_url, new_context):
    page = new_context().new_page()
    code = code_step(page, base_url, new_phone())
    page.type("#code-input", code, delay=50)  # typed digit by digit, no click, no Enter
    page.wait_for_url(re.compile(r"/profile/"))
    expect(page.locator("#invite-code")).to_be_visible()


def test_double_enter_and_double_click_send_one_code(base_url, new_context, app_db):
    page = new_context().new_page()
    phone = new_phone()
    page.goto(base_url + "/")
    page.fill("#phone-input", phone)
    page.focus("#phone-input")
    # As a person presses: the second Enter goes wherever the focus is by then (the page may
    # already be at the code step, whose empty field the browser does not submit).
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    expect(page.locator("#demo-code")).to_be_visible()
    page.wait_for_timeout(800)  # time for a second event to arrive, if one was sent
    expect(page.locator("#error-message")).to_have_count(0)
    assert sends(app_db, phone) == 1

    other = new_context().new_page()
    phone = new_phone()
    other.goto(base_url + "/")
    other.fill("#phone-input", phone)
    other.dblclick("#request-code-button")
    expect(other.locator("#demo-code")).to_be_visible()
    other.wait_for_timeout(800)
    expect(other.locator("#error-message")).to_have_count(0)
    assert sends(app_db, phone) == 1


def test_double_enter_on_a_wrong_code_costs_one_attempt(base_url, new_context, app_db):
    from referral_app.models import ConfirmationCode

    page = new_context().new_page()
    phone = new_phone()
    code = code_step(page, base_url, phone)
    wrong = "1111" if code != "1111" else "2222"
    page.fill("#code-input", wrong)  # signs in by itself...
    page.press("#code-input", "Enter")  # ...and Enter, twice
    page.press("#code-input", "Enter")
    expect(page.locator("#error-message")).to_have_text(translate("code.wrong"))
    page.wait_for_timeout(800)
    attempts = app_db.exec(select(ConfirmationCode.attempts).where(ConfirmationCode.phone_number == phone)).one()
    app_db.rollback()
    assert attempts == 1


def test_double_click_on_activate_activates_once(base_url, new_context):
    owner = new_context().new_page()
    sign_in(owner, base_url, new_phone())
    code = owner.locator("#invite-code").inner_text()
    page = new_context().new_page()
    sign_in(page, base_url, new_phone())
    page.fill("#activate-input", code)
    page.dblclick("#activate-button")
    expect(page.locator("#activated-code")).to_have_text(code)
    page.wait_for_timeout(800)
    expect(page.locator("#error-message")).to_have_count(0)  # no "already activated"


def test_errors_sit_at_their_field_and_are_announced(base_url, new_context):
    page = new_context(width=375, height=812).new_page()
    page.goto(base_url + "/")
    phone_input = page.locator("#phone-input")
    assert phone_input.get_attribute("aria-invalid") == "false"
    page.fill("#phone-input", "12ab")
    page.click("#request-code-button")
    error = page.locator("#error-message")
    expect(error).to_have_text(translate("phone.invalid"))
    expect(error).to_have_attribute("role", "alert")
    expect(phone_input).to_have_attribute("aria-invalid", "true")
    expect(phone_input).to_have_attribute("aria-describedby", "error-message")
    field, message, button = (
        phone_input.bounding_box(),
        error.bounding_box(),
        page.locator("#request-code-button").bounding_box(),
    )
    assert field["y"] + field["height"] <= message["y"] <= button["y"]  # between the field and the button
    screenshot(page, "login-bad-phone-375")


def test_a_dead_code_says_so_and_offers_a_new_one(base_url, new_context):
    page = new_context(width=375, height=812).new_page()
    code = code_step(page, base_url, new_phone())
    wrong = [guess for guess in ("1111", "2222", "3333", "4444", "5555", "6666") if guess != code][:5]
    for guess in wrong:
        page.fill("#code-input", guess)
        expect(page.locator("#error-message")).to_be_visible()
        page.wait_for_timeout(150)
    expect(page.locator("#error-message")).to_have_text(translate("code.too_many_attempts"))
    expect(page.locator("#confirm-code-button")).to_have_count(0)  # no useless button
    expect(page.locator("#code-input")).to_be_disabled()
    resend = page.locator("#resend-code-button")
    expect(resend).to_be_visible()
    screenshot(page, "login-dead-code-375")
    expect(resend).to_have_text(translate("login.new_code"), timeout=35_000)  # after the cooldown
    page.click("#resend-code-button")
    expect(page.locator("#code-input")).to_be_enabled()
    new_code = page.locator("#demo-code").inner_text()
    page.fill("#code-input", new_code)
    page.wait_for_url(re.compile(r"/profile/"))


def test_an_ended_session_says_so_and_keeps_the_typed_code(base_url, new_context, app_db):
    owner = new_context().new_page()
    owner_phone = new_phone()
    sign_in(owner, base_url, owner_phone)
    code = owner.locator("#invite-code").inner_text()

    page = new_context(width=375, height=812).new_page()
    phone = new_phone()
    sign_in(page, base_url, phone)
    page.fill("#activate-input", code.lower())
    user_id = app_db.exec(select(User.id).where(User.phone_number == phone)).one()
    app_db.exec(update(AuthSession).where(AuthSession.user_id == user_id).values(revoked_at=AuthSession.created_at))
    app_db.commit()
    page.click("#activate-button")
    page.wait_for_url(re.compile(r"/\?"))
    expect(page.get_by_text(translate("auth.required"))).to_be_visible()
    expect(page.locator("#invited-notice")).to_contain_text(keep_together(mask_phone(owner_phone)))
    screenshot(page, "login-session-ended-375")
    forget_sends(app_db, phone)  # the sign-in was seconds ago: skip the send cooldown
    page.fill("#phone-input", phone)
    page.click("#request-code-button")
    page.fill("#code-input", page.locator("#demo-code").inner_text())
    page.wait_for_url(re.compile(r"/profile/"))
    expect(page.locator("#activate-input")).to_have_value(code)


def _form_top(page) -> float:
    return page.locator("#phone-input").bounding_box()["y"]


def test_the_ref_banner_does_not_move_the_form(base_url, new_context):
    """The banner's space is there at the first paint: measured with the page's connection to
    the server held back (the prerendered page as first painted), then with the banner shown."""
    owner = new_context().new_page()
    owner_phone = new_phone()
    sign_in(owner, base_url, owner_phone)
    code = owner.locator("#invite-code").inner_text()
    for width in (375, 1440):
        for ref, expected in ((code, translate("login.invited_by", phone=keep_together(mask_phone(owner_phone)), code=code)),
                              ("ZZZZZZ", translate("login.invite_unknown", code="ZZZZZZ"))):
            first_paint = new_context(width=width, height=812).new_page()
            first_paint.route_web_socket(re.compile(r"/_event"), lambda ws: None)  # never connects
            first_paint.goto(f"{base_url}/?ref={ref}")
            expect(first_paint.locator("#phone-input")).to_be_visible()
            before = _form_top(first_paint)
            expect(first_paint.locator("#invited-notice")).to_have_count(0)

            page = new_context(width=width, height=812).new_page()
            page.goto(f"{base_url}/?ref={ref}")
            expect(page.locator("#invited-notice")).to_have_text(expected)
            assert abs(_form_top(page) - before) < 1, (width, ref, before, _form_top(page))
            screenshot(page, f"login-ref-{'known' if ref == code else 'unknown'}-{width}")
