"""``/metrics`` (Prometheus text format, for METRICS_ALLOWED_NETWORKS only), ``HEAD``
wherever ``GET`` answers (SPEC §4), and ``/admin`` without the slash."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from referral_app.referral_app import api
from referral_app.domain import events
from referral_app.infra import metrics
from referral_app.services.bus import bus
from referral_app.settings import settings
from tests.api.conftest import PHONE_A, PHONE_B, bearer, sign_in

LOOPBACK = ("127.0.0.1", 50001)


@pytest.fixture
def local(db):
    with TestClient(api, client=LOOPBACK) as test_client:
        yield test_client


def samples(client: TestClient) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` of one scrape."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_by_route_template_and_the_domain_events(local):
    before = samples(local)
    token = sign_in(local, PHONE_A)  # one code sent, one sign-in
    owner_code = local.get("/api/v1/profile/me/", headers=bearer(token)).json()["invite_code"]
    other = sign_in(local, PHONE_B)
    assert local.post("/api/profile/activate_invite", json={"invite_code": owner_code}, headers=bearer(other)).status_code == 200
    local.get("/api/profile/me", headers=bearer(token))  # an alias of /api/v1/profile/me/
    local.get("/api/v1/no/such/route/")
    after = samples(local)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("referral_codes_sent_total") == 2
    assert grew("referral_sign_ins_total") == 2
    assert grew("referral_invite_activations_total") == 1
    profile = {"method": "GET", "route": "/api/v1/profile/me/"}
    assert grew("referral_http_requests_total", **profile, status="200") == 2
    assert grew("referral_http_request_duration_seconds_count", **profile) == 2
    assert grew("referral_http_request_duration_seconds_bucket", **profile, le="+Inf") == 2
    assert grew("referral_http_requests_total", method="GET", route="/api/{rest:path}", status="404") == 1
    # Only templates, never raw paths or tokens, become label values.
    routes = {dict(labels).get("route") for (_name, labels) in after if dict(labels).get("route")}
    assert not any(token in route or "no/such" in route for route in routes), routes


def test_metrics_only_for_allowed_networks(db, monkeypatch):
    with TestClient(api, client=("198.51.100.7", 50000)) as outsider:
        response = outsider.get("/metrics")
        assert response.status_code == 404 and response.json()["code"] == "request.not_found"
        assert "referral_" not in response.text
    with TestClient(api, client=LOOPBACK) as local:
        assert local.get("/metrics").status_code == 200
        # Through a proxy on loopback that is not trusted: the socket's address decides;
        # through a trusted one, the forwarded client's.
        monkeypatch.setattr(settings, "trusted_proxies", ("127.0.0.1",))
        forwarded = local.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert forwarded.status_code == 404
    monkeypatch.setattr(settings, "metrics_allowed_networks", ("198.51.100.0/24",))
    with TestClient(api, client=("198.51.100.7", 50000)) as monitoring:
        assert monitoring.get("/metrics").status_code == 200


def test_a_failing_listener_does_not_undo_the_event(local):
    def broken(_event):
        raise RuntimeError("listener bug")

    bus.subscribe(events.UserSignedIn, broken)
    try:
        token = sign_in(local, PHONE_A)
        assert local.get("/api/v1/profile/me/", headers=bearer(token)).status_code == 200
    finally:
        bus.unsubscribe(events.UserSignedIn, broken)


def test_live_subscriber_gauge_goes_up_and_down(local):
    def gauge() -> float:
        return value(samples(local), "referral_live_subscribers")

    start = gauge()
    with metrics.track_live_subscriber():
        with metrics.track_live_subscriber():
            assert gauge() == start + 2
    assert gauge() == start


@pytest.mark.parametrize(
    "path",
    ["/api/health", "/api/v1/health/", "/api/openapi.json", "/api/docs", "/api/v1/profile/me/", "/admin/login", "/metrics"],
)
def test_head_answers_wherever_get_does(local, path):
    get = local.get(path, follow_redirects=False)
    head = local.head(path, follow_redirects=False)
    assert head.status_code == get.status_code != 405, (path, get.status_code, head.status_code)
    assert head.content == b""
    # (/metrics grows between the two requests: its length may differ.)
    for header in ("content-type", "cache-control") + (("content-length",) if path != "/metrics" else ()):
        assert head.headers.get(header) == get.headers.get(header), header


def test_head_is_still_refused_where_get_is(local):
    response = local.head("/api/v1/auth/request_code/")
    assert response.status_code == 405 and response.content == b""
    assert "POST" in response.headers["allow"]


def test_admin_without_the_slash_goes_to_the_admin(local):
    response = local.get("/admin", follow_redirects=False)
    assert response.status_code == 308 and response.headers["location"] == "/admin/"
    assert local.get("/admin?x=1", follow_redirects=False).headers["location"] == "/admin/?x=1"
    assert re.search(r"/admin/login", str(local.get("/admin").url))
