"""Two checks early in the app's stack (infra/gate.py), before any router reads a request:

- a Cookie header over MAX_COOKIE_HEADER_BYTES gets 431 and a page that recovers
  (referral_app/infra/cookie_limit.py);
- /metrics however spelt is a 404 outside METRICS_ALLOWED_NETWORKS
  (referral_app/infra/internal_paths.py).

tests/e2e/test_proxy_chain.py runs both through real nginx and Granian.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from referral_app.referral_app import api
from referral_app.i18n import translate
from referral_app.infra.internal_paths import is_internal, normalised_path
from referral_app.settings import settings
from tests.api.conftest import CLIENT_ADDRESS, PHONE_A, sign_in

MONITORING = ("192.0.2.9", 40000)


def jar(total: int, prefix: str = "tossed") -> str:
    count = total // 3000 + 1
    return "; ".join(f"{prefix}{number}={'x' * 2990}" for number in range(count))


def test_a_12_kb_cookie_header_gets_431_and_expired_cookies(client):
    response = client.get("/api/health", headers={"Cookie": jar(12_000), "Host": "app.example.test"})
    assert response.status_code == 431
    # Over plain HTTP no Clear-Site-Data: Chromium would ignore the Set-Cookie lines with it.
    assert "clear-site-data" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-language"] == settings.default_language
    assert translate("cookies_too_large.title", "en") in response.text and 'href="/"' in response.text
    # The script is allowed by its hash only.
    assert "script-src 'sha256-" in response.headers["content-security-policy"]
    # Each tossed cookie expired on this host and on the parent domain a sibling could use.
    expired = response.headers.get_list("set-cookie")
    for number in range(5):
        assert f"tossed{number}=; Max-Age=0; Path=/" in expired
        assert f"tossed{number}=; Max-Age=0; Path=/; Domain=example.test" in expired
    assert not any("Domain=test" in value for value in expired)
    # Without the jar, the same request is served.
    assert client.get("/api/health").status_code == 200


def test_the_page_is_in_the_visitors_language_and_reaches_every_line(client, monkeypatch):
    monkeypatch.setattr(settings, "max_cookie_header_bytes", 4096)
    headers = [("Cookie", jar(2500, "a")), ("Cookie", jar(2500, "b")), ("Accept-Language", "ru-RU,ru;q=0.9")]
    response = client.get("/", headers=headers)
    assert response.status_code == 431 and response.headers["content-language"] == "ru"
    assert translate("cookies_too_large.title", "ru") in response.text
    assert translate("cookies_too_large.text", "ru") in response.text
    # Each line alone is under the limit.
    assert client.get("/api/health", headers=[headers[0]]).status_code == 200


def test_over_https_clear_site_data_and_the_host_cookie_expired_as_it_was_set(client, monkeypatch):
    monkeypatch.setattr(settings, "trusted_proxies", (CLIENT_ADDRESS[0],))
    cookie = f"__Host-referral_session=abc; {jar(9000)}"
    response = client.get("/", headers={"Cookie": cookie, "X-Forwarded-Proto": "https", "Host": "app.example.test"})
    assert response.status_code == 431
    assert response.headers["clear-site-data"] == '"cookies"'
    expired = response.headers.get_list("set-cookie")
    assert "__Host-referral_session=; Max-Age=0; Path=/; Secure" in expired
    assert not any(value.startswith("__Host-") and "Domain=" in value for value in expired)


def test_the_page_is_styled_and_named_within_its_csp(client, monkeypatch):
    """A readable page (designer's review): an inline <style>, which the page's CSP allows,
    the app's name above the title, and the text for a spent reload kept hidden."""
    monkeypatch.setattr(settings, "trusted_proxies", (CLIENT_ADDRESS[0],))
    headers = {"Cookie": jar(12_000), "X-Forwarded-Proto": "https", "Accept-Language": "ru"}
    response = client.get("/", headers=headers)
    assert response.status_code == 431 and response.headers["clear-site-data"] == '"cookies"'
    csp = response.headers["content-security-policy"]
    assert "style-src 'unsafe-inline'" in csp and "default-src 'none'" in csp
    head = response.text.split("</head>")[0]
    assert "<style>" in head and "max-width:32rem" in head and "system-ui" in head and "padding:24px" in head
    body = response.text.split("<body>")[1]
    assert body.index(translate("app.title", "ru")) < body.index("<h1>")
    assert f'<p id="stuck" hidden>{translate("cookies_too_large.stuck", "ru")}</p>' in body


def test_a_normal_cookie_header_and_a_signed_in_user_pass(client):
    token = sign_in(client, PHONE_A)
    headers = {"Authorization": f"Bearer {token}", "Cookie": jar(5000)}  # two 3 kB cookies
    response = client.get("/api/v1/profile/me/", headers=headers)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "normal"),
    [
        ("/metrics", "/metrics"),
        ("/metrics\n", "/metrics"),
        ("/metrics/", "/metrics"),
        ("//metrics", "/metrics"),
        ("/metrics;x", "/metrics"),
        ("/./metrics", "/metrics"),
        ("/api/../metrics", "/metrics"),
        ("/METRICS", "/metrics"),
        ("/%6detrics", "/metrics"),  # a second layer of percent-encoding
        ("/x/..%2fmetrics", "/metrics"),
        ("/metrics\\", "/metrics"),
        ("/metrics.", "/metrics"),
        ("/metricsx", "/metricsx"),
        ("/api/v1/profile/me/", "/api/v1/profile/me"),
        ("/", "/"),
    ],
)
def test_paths_are_normalised_as_nginx_does_and_more(path, normal):
    assert normalised_path(path) == normal
    assert is_internal(path) == (normal == "/metrics")


@pytest.mark.parametrize(
    "path",
    ["/metrics", "/metrics%0a", "/metrics/", "//metrics", "/metrics;x", "/./metrics", "/METRICS", "/api/../metrics"],
)
def test_every_spelling_of_metrics_is_the_same_404_to_others(db, path):
    """Starlette's route pattern ^/metrics$ matches "/metrics\\n"; FastAPI redirects
    "/metrics/"; other spellings meet other routers: to a stranger, all are the app's 404."""
    with TestClient(api, client=CLIENT_ADDRESS, follow_redirects=False) as stranger:
        response = stranger.get(path)
    assert response.status_code == 404, (path, response.status_code, response.text[:200])
    assert response.json()["code"] == "request.not_found"


def test_monitoring_still_reads_metrics(db, monkeypatch):
    monkeypatch.setattr(settings, "metrics_allowed_networks", (f"{MONITORING[0]}/32",))
    with TestClient(api, client=MONITORING) as monitoring:
        assert "referral_http_requests_total" in monitoring.get("/metrics").text
