"""Cookie tossing over plain HTTP (issue 18): a sibling's duplicate of one of our cookies is
deleted with the very answer to the request that carried it (infra/cookies.py,
TossedCookieCleanup), so it costs at most one request, never a lock-out; our own cookie
(host-only, Path=/) is never among the deletions."""

from __future__ import annotations

from fastapi.testclient import TestClient

from referral_app.api.app import api
from referral_app.domain import staff
from referral_app.infra.cookies import deletions, tossed_cookies
from referral_app.settings import settings
from tests.api.conftest import CLIENT_ADDRESS

STAFF_PASSWORD = "a long staff password"


def removed(response) -> set[tuple[str, str | None, str]]:
    """(name, Domain or None for host-only, Path) of each deletion in the answer."""
    found = set()
    for value in response.headers.get_list("set-cookie"):
        parts = [part.strip() for part in value.split(";")]
        attrs = {k.lower(): v for k, _, v in (part.partition("=") for part in parts[1:])}
        if attrs.get("max-age") == "0":
            found.add((parts[0].split("=", 1)[0], attrs.get("domain"), attrs.get("path")))
    return found


def client_for(host: str, scheme: str = "http") -> TestClient:
    return TestClient(api, client=CLIENT_ADDRESS, base_url=f"{scheme}://{host}")


def test_a_duplicate_session_cookie_is_deleted_everywhere_but_where_ours_lives(db):
    with client_for("app.example.test:3000") as client:
        response = client.get("/profile", headers={"Cookie": "referral_session=ours; referral_session=theirs"})
    gone = removed(response)
    for domain in ("app.example.test", "example.test", "test"):
        assert {("referral_session", domain, "/"), ("referral_session", domain, "/profile"),
                ("referral_session", domain, "/profile/")} <= gone, domain
    assert {("referral_session", None, "/profile"), ("referral_session", None, "/profile/")} <= gone
    assert ("referral_session", None, "/") not in gone  # ours: host-only, Path=/
    assert {name for name, _, _ in gone} == {"referral_session"}


def test_every_path_prefix_of_the_request_is_covered(db):
    with client_for("app.example.test") as client:
        response = client.post("/api/v1/auth/browser_session/",
                               headers={"Cookie": "referral_session=a; referral_session=b", "Origin": "http://x.test"})
    paths = {path for _, domain, path in removed(response) if domain == "example.test"}
    assert {"/", "/api", "/api/", "/api/v1", "/api/v1/", "/api/v1/auth", "/api/v1/auth/",
            "/api/v1/auth/browser_session", "/api/v1/auth/browser_session/"} <= paths


def test_one_cookie_of_each_name_changes_nothing(db):
    with client_for("app.example.test") as client:
        response = client.get("/profile", headers={"Cookie": "referral_session=ours; referral_admin=x; lang=ru"})
    assert removed(response) == set()
    assert tossed_cookies("referral_session=ours; referral_session=ours2", secure=False) == ["referral_session"]
    assert tossed_cookies("theme=dark; other=1", secure=False) == []


def test_on_an_ip_address_only_other_paths_are_deleted():
    assert all(b"Domain=" not in value for value in deletions(["referral_session"], "127.0.0.1", "/a", False))
    assert {value.split(b";")[1].strip() for value in deletions(["referral_session"], "127.0.0.1", "/a", False)} == {
        b"Path=/a", b"Path=/a/"}


def test_over_https_a_plain_named_copy_is_deleted_and_the_host_cookie_kept(db):
    with client_for("app.example.test", "https") as client:
        response = client.get("/", headers={"Cookie": "__Host-referral_session=ours; referral_session=theirs"})
    gone = removed(response)
    assert ("referral_session", None, "/") in gone and ("referral_session", "example.test", "/") in gone
    assert not [name for name, _, _ in gone if name.startswith("__Host-")]
    assert all("secure" in value.lower() for value in response.headers.get_list("set-cookie"))


def test_a_staff_member_with_a_tossed_admin_cookie_is_back_after_one_request(db, monkeypatch):
    monkeypatch.setattr(settings, "bcrypt_rounds", 4)
    staff.create_staff(db, "ops_chief", STAFF_PASSWORD)
    attacker = staff.start_staff_session(db, staff.create_staff(db, "mallory", STAFF_PASSWORD).id)
    with client_for("app.example.test") as client:
        page = client.get("/admin/login")
        token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        login = client.post("/admin/login", data={"username": "ops_chief", "password": STAFF_PASSWORD,
                                                  "csrf_token": token, "staff_binding": "b" * 32},
                            headers={"Origin": "http://app.example.test"}, follow_redirects=False)
        assert login.status_code == 302, login.text[:300]
        ours = client.cookies["referral_admin"]
        client.cookies.clear()
        # The sibling's copy for Domain=example.test comes along: which is whose is unknown.
        tossed = client.get("/admin/user/list", headers={"Cookie": f"referral_admin={ours}; referral_admin={attacker}"},
                            follow_redirects=False)
        assert ("referral_admin", "example.test", "/") in removed(tossed)
        assert ("referral_admin", None, "/") not in removed(tossed)
        # The browser applied the deletions: only ours is left, and the staff member is signed in.
        again = client.get("/admin/user/list", headers={"Cookie": f"referral_admin={ours}"}, follow_redirects=False)
        assert again.status_code == 200 and "<table" in again.text
