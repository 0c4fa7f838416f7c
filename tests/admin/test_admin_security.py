"""Staff sessions on the server, forged admin requests, and admin input that can never be valid.

FastAPI's TestClient on the real app; the browser's side (pages of another origin) is in
tests/e2e/test_cross_origin.py.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from urllib.parse import quote, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqladmin import BaseView, expose
from sqladmin.authentication import get_current_user_id
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from referral_app.admin.auth import ADMIN_COOKIE, current_staff
from referral_app.admin.setup import StaffAdmin
from referral_app.admin.views import VIEWS
from referral_app.referral_app import api
from referral_app.domain import staff
from referral_app.domain.clock import utcnow
from referral_app.domain.sessions import hash_token
from referral_app.infra.db import engine
from referral_app.settings import settings
from tests.admin.test_admin import (
    ORIGIN,
    SAME_ORIGIN,
    STAFF_NAME,
    STAFF_BINDING,
    STAFF_PASSWORD,
    admin_app,
    csrf_of,
    listed_ids,
    list_page,
    login,
    logout,
    run_action,
    snapshot,
)
from tests.api.conftest import CLIENT_ADDRESS
from tests.conftest import ROOT

# Fixtures of the admin tests (bcrypt at cost 4, clients, accounts, a small world).
from tests.admin.test_admin import admin, client, fast_bcrypt, staff_account, world  # noqa: F401,E402


def signed_in(test_client: TestClient) -> bool:
    response = test_client.get("/admin/user/list", follow_redirects=False)
    assert response.status_code in (200, 302)
    return response.status_code == 200


def cookie_of(test_client: TestClient) -> str:
    return test_client.cookies[ADMIN_COOKIE]


# Sessions


def test_only_a_hash_of_the_session_id_is_stored(db, admin, staff_account):
    session_id, _, binding = cookie_of(admin).rpartition(".")  # <session id>.<the page's binding>
    assert binding == STAFF_BINDING
    rows = db.exec(text("SELECT staff_id, session_hash, revoked_at FROM staff_sessions")).all()
    db.rollback()
    assert [tuple(row) for row in rows] == [(staff_account.id, hash_token(session_id), None)]
    assert len(session_id) >= 43  # 256 random bits
    dump = db.exec(text("SELECT * FROM staff_sessions")).all()
    db.rollback()
    assert session_id not in repr(dump)


def test_the_cookie_saved_before_logout_no_longer_works(db, admin):
    saved = cookie_of(admin)
    assert logout(admin).status_code == 303
    assert not signed_in(admin)
    # Someone who copied the cookie before logout (its 8 hours are not over) gets nothing.
    with TestClient(api, client=CLIENT_ADDRESS, cookies={ADMIN_COOKIE: saved}) as copied:
        assert not signed_in(copied)
        assert run_action(copied, "user", "deactivate", 1, token=csrf_of(copied)).status_code == 302


def test_logout_only_by_post_with_the_token_from_the_admins_origin(admin):
    # A link or an image on any page would send a GET: it signs nobody out.
    for method in ("GET", "HEAD"):
        assert admin.request(method, "/admin/logout", follow_redirects=False).status_code == 405
    assert signed_in(admin)
    token = csrf_of(admin, "/admin/")
    for headers, data in [
        (SAME_ORIGIN, {}),  # no token
        (SAME_ORIGIN, {"csrf_token": "0" * 64}),
        ({"Origin": "http://evil.example"}, {"csrf_token": token}),
        ({"Origin": "http://sibling.testserver"}, {"csrf_token": token}),
        ({}, {"csrf_token": token}),  # neither Origin nor Referer
    ]:
        response = admin.post("/admin/logout", data=data, headers=headers, follow_redirects=False)
        assert response.status_code == 403, (headers, data)
        assert signed_in(admin)
    assert admin.post("/admin/logout", data={"csrf_token": token}, headers=SAME_ORIGIN).status_code == 200
    assert not signed_in(admin)


def test_logout_ends_only_that_session(db, staff_account):
    with TestClient(api, client=CLIENT_ADDRESS) as first, TestClient(api, client=CLIENT_ADDRESS) as second:
        assert login(first).status_code == 302 and login(second).status_code == 302
        logout(first)
        assert not signed_in(first) and signed_in(second)


def test_deactivation_ends_every_session_of_the_account_at_once(db, admin, staff_account):
    with TestClient(api, client=CLIENT_ADDRESS) as other_browser:
        assert login(other_browser).status_code == 302
        staff.set_staff_active(db, STAFF_NAME, False)
        assert not signed_in(admin) and not signed_in(other_browser)
        assert login(admin).status_code == 400  # nor can it log in again
        # Reactivation lets it log in again, but the old sessions stay ended.
        staff.set_staff_active(db, STAFF_NAME, True)
        assert not signed_in(admin) and not signed_in(other_browser)
        assert login(admin).status_code == 302 and signed_in(admin)
    revoked = db.exec(text("SELECT COUNT(*) FROM staff_sessions WHERE revoked_at IS NOT NULL")).one()[0]
    db.rollback()
    assert revoked == 2


def test_deactivate_admin_command(db, admin, staff_account):
    db.rollback()

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "referral_app", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, check=False)

    result = command("deactivate-admin", STAFF_NAME)
    assert result.returncode == 0, result.stderr
    assert not signed_in(admin)
    result = command("deactivate-admin", "nobody_here")
    assert result.returncode == 1 and "no staff account" in result.stderr
    assert command("reactivate-admin", STAFF_NAME).returncode == 0
    assert login(admin).status_code == 302


def test_a_session_lasts_eight_hours(db, staff_account):
    start = utcnow()
    session_id = staff.start_staff_session(db, staff_account.id, now=start)
    assert staff.staff_of_session(db, session_id, now=start + timedelta(hours=8) - timedelta(seconds=1)) is not None
    assert staff.staff_of_session(db, session_id, now=start + timedelta(hours=8)) is None
    for junk in (None, "", 12, "x" * 129, b"bytes"):
        assert staff.staff_of_session(db, junk) is None
        assert staff.end_staff_session(db, junk) is False


def test_the_login_form_needs_the_token_and_the_admins_origin(db, client, staff_account):
    token = csrf_of(client)
    form = {"username": STAFF_NAME, "password": STAFF_PASSWORD}
    for headers, data in [
        (SAME_ORIGIN, form),  # no token
        ({"Origin": "http://evil.example"}, {**form, "csrf_token": token}),  # login forgery from another page
        ({"Origin": "http://testserver:3001"}, {**form, "csrf_token": token}),
        ({}, {**form, "csrf_token": token}),
    ]:
        response = client.post("/admin/login", data=data, headers=headers, follow_redirects=False)
        assert response.status_code == 403, headers
        assert ADMIN_COOKIE not in response.headers.get("set-cookie", "")
    assert db.exec(text("SELECT COUNT(*) FROM staff_sessions")).one()[0] == 0
    db.rollback()
    assert login(client).status_code == 302


def test_the_token_is_bound_to_the_session(db, staff_account):
    with TestClient(api, client=CLIENT_ADDRESS) as mine, TestClient(api, client=CLIENT_ADDRESS) as other:
        before_login = csrf_of(mine)  # the login form's token: not the session's
        assert login(mine).status_code == 302 and login(other).status_code == 302
        token, others = csrf_of(mine, "/admin/"), csrf_of(other, "/admin/")
        assert len({before_login, token, others}) == 3
        for wrong in (before_login, others):
            assert run_action(mine, "user", "deactivate", 1, token=wrong).status_code == 403
        assert run_action(mine, "user", "deactivate", 1, token=token).status_code == 303


def test_the_token_comes_in_a_header_too(admin):
    token = csrf_of(admin, "/admin/")
    response = admin.post("/admin/user/action/deactivate", params={"pks": ""}, headers={**SAME_ORIGIN,
                          "X-CSRF-Token": token}, follow_redirects=False)
    assert response.status_code == 303


def test_an_oversized_form_is_refused_before_it_is_read(admin):
    big = {"csrf_token": csrf_of(admin, "/admin/"), "x": "a" * 70_000}
    response = admin.post("/admin/logout", data=big, headers=SAME_ORIGIN, follow_redirects=False)
    assert response.status_code == 413
    assert signed_in(admin)


# The one way for new admin pages (the dashboard, deliveries, exports, the audit log)


class ProbeView(BaseView):
    """A page as another engineer would add one: who is signed in, and a form that changes something."""

    name = "Probe"
    changes: list[int] = []

    @expose("/probe", methods=["GET"])
    async def who(self, request: Request):
        staff_identity = current_staff(request)
        return JSONResponse({"id": staff_identity.id, "username": staff_identity.username,
                             "sqladmin": get_current_user_id(request)})

    @expose("/probe/change", methods=["POST"])
    async def change(self, request: Request):
        ProbeView.changes.append(current_staff(request).id)
        return JSONResponse({"done": True})


@pytest.fixture
def probe_app(db):
    from referral_app.admin.auth import StaffAuth

    app = FastAPI()
    admin = StaffAdmin(app, engine, base_url="/admin", authentication_backend=StaffAuth())
    admin.add_view(ProbeView)
    ProbeView.changes = []
    with TestClient(app, client=CLIENT_ADDRESS) as test_client:
        yield test_client


def test_a_new_admin_page_knows_its_staff_and_is_protected_without_extra_code(db, probe_app, staff_account):
    assert probe_app.get("/admin/probe", follow_redirects=False).status_code == 302  # behind the login
    assert login(probe_app).status_code == 302
    assert probe_app.get("/admin/probe").json() == {
        "id": staff_account.id, "username": STAFF_NAME, "sqladmin": staff_account.id
    }
    from referral_app.admin.auth import _token_for

    # What the signed-in staff member's pages carry (this app has no page of its own to read it from).
    token = _token_for(cookie_of(probe_app).rpartition(".")[0])
    # Its POST route is guarded like every other: no token, or another origin, and it never runs.
    assert probe_app.post("/admin/probe/change", headers=SAME_ORIGIN).status_code == 403
    assert probe_app.post("/admin/probe/change", data={"csrf_token": token},
                          headers={"Origin": "http://evil.example"}).status_code == 403
    assert ProbeView.changes == []
    assert probe_app.post("/admin/probe/change", data={"csrf_token": token}, headers=SAME_ORIGIN).json() == {"done": True}
    assert ProbeView.changes == [staff_account.id]


# Ids that are not ids; searches that match literally

NOT_IDS = [
    "abc", "1.5", "1e3", "-1", "0", "+1", " 1", "1 ", "0x1", "١", "1_000", "2147483648", "99999999999",
    "99999999999999999999999999", "1;2", "1,2", "%00", "1%00", "%0A", "..%2F1", "'", "\\", "x" * 5000,
]


def test_every_admin_url_whose_id_is_not_an_id_is_a_4xx(db, admin, world, staff_account):
    """Every route that takes a record id, for every view and a long list of non-ids: a 4xx, never a 500."""
    token = csrf_of(admin, "/admin/")
    templates = [route.path for route in admin_app().routes if isinstance(route, Route) and "{pk" in route.path]
    assert {"/{identity}/details/{pk:path}", "/{identity}/edit/{pk:path}"} <= set(templates)
    before = snapshot(db)
    checked = 0
    for view in VIEWS:
        for template in templates:
            for pk in NOT_IDS:
                path = "/admin" + template.replace("{identity}", view.identity).replace("{pk:path}", quote(pk, safe="%"))
                path = path.replace("{column_name}", "id")
                for method in ("GET", "POST"):
                    response = admin.request(method, path, data={"csrf_token": token}, headers=SAME_ORIGIN,
                                             follow_redirects=False)
                    assert 400 <= response.status_code < 500, (method, path, response.status_code)
                    checked += 1
    assert checked > 900
    assert admin.get("/admin/user/details/abc").status_code == 404
    assert admin.get(f"/admin/user/details/{world.alice_id}").status_code == 200
    assert snapshot(db) == before


def test_list_parameters_that_are_not_numbers_are_a_4xx(admin, world):
    for params in [{"page": "abc"}, {"pageSize": "1e9"}, {"page": "99999999999999999999999"}, {"pageSize": "-5"},
                   {"sortBy": "password_hash"}, {"sort": "sideways"}, {"activated": "\x00"}, {"page": "\x00"}]:
        response = admin.get("/admin/user/list", params=params, follow_redirects=False)
        assert response.status_code in (200, 302, 400), (params, response.status_code)


@pytest.mark.parametrize("term", ["_", "%", "\\", "%%", "_%", "7_1", "79%8", "/", "//", "\\%", "[0-9]", "*", "?"])
def test_admin_searches_match_literally(admin, world, term):
    """No phone, code or username holds these characters: every search finds nothing, on every view."""
    for view in VIEWS:
        if view.column_searchable_list:
            assert listed_ids(list_page(admin, view.identity, search=term)) == [], (view.identity, term)


def test_a_search_with_nul_or_control_characters_finds_nothing_and_fails_nothing(admin, world):
    for term in ["\x00", "7\x00", "\x00%", "+7912\x00", "\r\n%", "\x1b[31m"]:
        for view in VIEWS:
            if view.column_searchable_list:
                assert listed_ids(list_page(admin, view.identity, search=term)) == [], (view.identity, repr(term))


def test_searches_still_find_by_part_of_a_number_and_by_code(admin, world):
    assert listed_ids(list_page(admin, "user", search="3456780")) == [world.bob_id]
    assert listed_ids(list_page(admin, "user", search=f"  {world.carol_code.lower()} ")) == [world.carol_id]
    assert listed_ids(list_page(admin, "referral", search=world.alice_code)) == [world.bob_id]
    assert listed_ids(list_page(admin, "confirmation-code", search="+7912345678")) == [world.dave_code_id]
    assert listed_ids(list_page(admin, "session", search="3456780")) == [world.bob_session_id]


# The staff login's per-IP lock behind a proxy that adds its own X-Forwarded-For line


def test_the_per_ip_lock_counts_the_client_the_proxy_saw(db, staff_account, monkeypatch):
    """The client writes an X-Forwarded-For line of its own, new on every try; the trusted proxy
    adds a second line with the real address. Five failures lock that address, so the
    correct password on the 11th try is refused."""
    monkeypatch.setattr(settings, "trusted_proxies", (CLIENT_ADDRESS[0],))
    real_client = "203.0.113.50"
    with TestClient(api, client=CLIENT_ADDRESS) as proxy:
        for attempt in range(10):
            token = csrf_of(proxy)
            response = proxy.post(
                "/admin/login",
                data={"username": f"guess{attempt}", "password": "whatever it is", "csrf_token": token,
                      "staff_binding": STAFF_BINDING},
                headers=[("Origin", ORIGIN), ("X-Forwarded-For", f"10.9.9.{attempt}"),
                         ("X-Forwarded-For", real_client)],
                follow_redirects=False,
            )
            assert response.status_code == 400
        token = csrf_of(proxy)
        eleventh = proxy.post(
            "/admin/login", data={"username": STAFF_NAME, "password": STAFF_PASSWORD, "csrf_token": token,
                                  "staff_binding": STAFF_BINDING},
            headers=[("Origin", ORIGIN), ("X-Forwarded-For", "10.9.9.99"), ("X-Forwarded-For", real_client)],
            follow_redirects=False,
        )
        assert eleventh.status_code == 400
    ips = {row[0] for row in db.exec(text("SELECT DISTINCT client_ip FROM staff_login_failures")).all()}
    db.rollback()
    assert ips == {real_client}
