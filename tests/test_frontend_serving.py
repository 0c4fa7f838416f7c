"""How the prebuilt pages are served (referral_app/infra/static_pages.py), on a stand-in for
Reflex's static mount: cache lifetimes, and /page served as /page/ without a redirect."""

from __future__ import annotations

import asyncio

import pytest

from referral_app.infra import static_pages as frontend


def serve(path: str, content_type: bytes = b"text/html; charset=utf-8", status: int = 200, method: str = "GET"):
    seen_paths: list[str] = []
    sent: list[dict] = []

    async def static_files(scope, receive, send):
        seen_paths.append(scope["path"])
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
        await send({"type": "http.response.body", "body": b""})

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "headers": []}
    asyncio.run(frontend.FrontendServing(static_files)(scope, receive, send))
    headers = dict(sent[0]["headers"])
    return seen_paths[0], headers.get(b"cache-control")


@pytest.fixture
def built(tmp_path, monkeypatch):
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "index.html").write_text("<html></html>")
    monkeypatch.setattr(frontend, "static_dir", lambda: tmp_path)
    frontend._is_page_directory.cache_clear()
    yield tmp_path
    frontend._is_page_directory.cache_clear()


def test_hashed_assets_are_immutable_for_a_year(built):
    assert serve("/assets/root-QW4rhy8Y.js", b"text/javascript")[1] == b"public, max-age=31536000, immutable"
    assert serve("/assets/x.css", b"text/css", status=304)[1] is None  # only on a 200


def test_pages_are_revalidated_and_our_icons_kept_a_day(built):
    assert serve("/")[1] == b"no-cache"
    assert serve("/favicon.svg", b"image/svg+xml")[1] == b"public, max-age=86400"


def test_a_page_directory_is_served_without_the_trailing_slash_redirect(built):
    assert serve("/profile")[0] == "/profile/"
    assert serve("/profile", method="HEAD")[0] == "/profile/"
    assert serve("/profile/")[0] == "/profile/"
    assert serve("/nowhere")[0] == "/nowhere"
    assert serve("/profile", method="POST")[0] == "/profile"
    assert serve("/api/v1/profile")[0] == "/api/v1/profile"  # the API has its own rules


@pytest.mark.parametrize("path", ["/" + "x" * 5000, "/../../etc", "/profile/../profile", "/a.b"])
def test_odd_paths_are_left_alone_and_never_an_error(built, path):
    assert serve(path)[0] == path
