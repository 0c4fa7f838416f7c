"""Sharing (SPEC §9) in Chromium: copy the code, copy the link, the native share sheet (or
copying when there is none), and a QR code that a reader decodes to the link."""

from __future__ import annotations

import shutil
import subprocess

from playwright.sync_api import expect

from referral_app.i18n import translate
from tests.e2e.conftest import SCREENSHOTS, screenshot
from tests.e2e.test_journey import new_phone, sign_in


def signed_in_page(base_url, new_context, width=1440, locale=None):
    context = new_context(width=width, height=900, locale=locale)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page = context.new_page()
    sign_in(page, base_url, new_phone())
    return page


def test_the_qr_code_decodes_to_the_share_link(base_url, new_context, tmp_path):
    page = signed_in_page(base_url, new_context, width=375)
    code = page.locator("#invite-code").inner_text()
    link = f"{base_url}/?ref={code}"
    expect(page.locator("#share-link")).to_have_text(link)
    qr = page.locator("#qr-code")
    expect(qr).to_be_visible()
    image = tmp_path / "qr.png"
    qr.screenshot(path=str(image))
    zbarimg = shutil.which("zbarimg")
    assert zbarimg, "zbarimg is missing: scripts/bootstrap.sh --dev installs zbar-tools"
    decoded = subprocess.run([zbarimg, "--quiet", "--raw", str(image)], capture_output=True, text=True, timeout=30)
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.strip() == link
    SCREENSHOTS.mkdir(exist_ok=True)
    shutil.copy(image, SCREENSHOTS / "qr-code-375.png")


def test_copy_link_and_copy_code(base_url, new_context):
    page = signed_in_page(base_url, new_context)
    code = page.locator("#invite-code").inner_text()
    page.click("#copy-link-button")
    expect(page.get_by_text(translate("profile.link_copied"))).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == f"{base_url}/?ref={code}"
    page.click("#copy-invite-button")
    expect(page.get_by_text(translate("profile.code_copied"))).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == code


def test_share_without_a_share_sheet_copies_the_link_and_says_so(base_url, new_context):
    """Chromium on Linux has no navigator.share: the button copies the link, in the page's language."""
    page = signed_in_page(base_url, new_context, width=375, locale="ru-RU")
    assert page.evaluate("typeof navigator.share") == "undefined"
    code = page.locator("#invite-code").inner_text()
    page.click("#share-button")
    toast = page.get_by_text(translate("profile.share_copied", "ru"))
    expect(toast).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == f"{base_url}/?ref={code}"
    # On a phone the toast stays clear of the referral list.
    toast_box = toast.bounding_box()
    list_box = page.locator("#referral-list").bounding_box()
    assert toast_box["y"] + toast_box["height"] <= list_box["y"] or toast_box["y"] >= list_box["y"] + list_box["height"]
    screenshot(page, "profile-share-copied-ru-375")


def test_share_opens_the_share_sheet_where_there_is_one(base_url, new_context):
    """Where the browser has navigator.share, the button hands it the link. Headless Chromium
    has no share sheet, so this page gets a recording navigator.share before it loads."""
    context = new_context()
    context.add_init_script(
        "window.__shared = []; navigator.share = (data) => { window.__shared.push(data); return Promise.resolve(); };"
    )
    page = context.new_page()
    sign_in(page, base_url, new_phone())
    code = page.locator("#invite-code").inner_text()
    page.click("#share-button")
    page.wait_for_function("window.__shared.length === 1")
    shared = page.evaluate("window.__shared[0]")
    assert shared["url"] == f"{base_url}/?ref={code}"
    assert shared["text"] == translate("profile.share_text", code=code)
    assert shared["title"] == translate("title.profile")


def test_the_profile_puts_sharing_first_then_the_list_then_the_invitation_card(base_url, new_context):
    page = signed_in_page(base_url, new_context, width=375)
    tops = [page.locator(selector).bounding_box()["y"] for selector in ("#share-button", "#qr-code", "#referral-count", "#activate-input")]
    assert tops == sorted(tops), tops
