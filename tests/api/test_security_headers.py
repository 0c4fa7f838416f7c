"""Security headers on every HTTP answer."""

from __future__ import annotations

import pytest

from referral_app.infra.responses import CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("method, path", [("get", "/api/openapi.json"), ("get", "/api/docs"), ("get", "/api/v1/profile/me/"), ("get", "/api/v1/nope")])
def test_headers_are_on_api_answers_of_every_kind(client, method, path):
    headers = getattr(client, method)(path).headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
