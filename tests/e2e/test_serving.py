"""How the built pages are served (SPEC §7): cache lifetimes, no detour through a redirect,
the product's name, icon and description, and the API's language headers."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

from referral_app.i18n import translate
from referral_app.settings import settings
from tests.conftest import ROOT


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url: str, headers: dict | None = None):
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        return opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10)
    except urllib.error.HTTPError as error:
        return error


class _Head(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: list[dict] = []
        self.scripts: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "meta" and "name" in attrs:
            self.meta[attrs["name"]] = attrs.get("content", "")
        if tag == "link":
            self.links.append(attrs)
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])
        self._in_title = tag == "title"

    def handle_data(self, data):
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag):
        self._in_title = False


def test_the_profile_is_served_without_a_redirect(base_url):
    for path in ("/profile", "/profile/", "/profile?ref=ABCDEF"):
        response = fetch(base_url + path)
        assert response.status == 200, path
        assert "text/html" in response.headers["Content-Type"]


def test_hashed_assets_are_cached_for_a_year_and_pages_are_revalidated(base_url):
    page = fetch(base_url + "/")
    assert page.headers["Cache-Control"] == "no-cache"
    head = _Head()
    head.feed(page.read().decode())
    assets = [link["href"] for link in head.links if link.get("href", "").startswith("/assets/")]
    assert assets
    for path in assets[:5]:
        response = fetch(base_url + path, {"Accept-Encoding": "gzip"})
        assert response.status == 200
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable", path


def test_the_page_carries_the_product_name_its_icon_and_a_description(base_url):
    head = _Head()
    head.feed(fetch(base_url + "/").read().decode())
    assert head.title == translate("title.login", settings.default_language)
    assert translate("app.title", settings.default_language) in head.title
    assert head.meta["description"] == translate("app.description", settings.default_language)
    icons = [link for link in head.links if link.get("rel") == "icon"]
    assert icons and icons[0]["href"] == "/favicon.svg"
    ours = (ROOT / "assets" / "favicon.svg").read_bytes()
    assert fetch(base_url + "/favicon.svg").read() == ours
    served_ico = fetch(base_url + "/favicon.ico").read()
    assert served_ico == (ROOT / "assets" / "favicon.ico").read_bytes()
    # Not Reflex's own icon (the one its templates ship).
    import reflex

    theirs = {hashlib.sha256(p.read_bytes()).digest() for p in Path(reflex.__file__).parent.rglob("favicon.ico")}
    assert hashlib.sha256(served_ico).digest() not in theirs


def test_the_api_answers_in_the_language_asked_for(base_url):
    request = urllib.request.Request(
        base_url + "/api/v1/auth/request_code/",
        data=json.dumps({"phone_number": "12"}).encode(),
        headers={"Content-Type": "application/json", "Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("a malformed phone number must be refused")
    except urllib.error.HTTPError as error:
        response = error
    assert response.status == 400
    assert response.headers["Content-Language"] == "ru"
    assert json.loads(response.read())["message"] == translate("phone.invalid", "ru")
    assert re.search(r"Accept-Language", response.headers.get("Vary", ""))
