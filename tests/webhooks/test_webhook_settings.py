"""WEBHOOK_URL without a valid WEBHOOK_SECRET stops the start, naming the variable."""

from __future__ import annotations

import pytest

from tests.test_settings import _run
from tests.webhooks.conftest import SECRET

URL = "https://hooks.example.test/referrals"


@pytest.mark.parametrize(
    ("env", "variable", "says"),
    [
        ({"WEBHOOK_URL": URL}, "WEBHOOK_SECRET", "required when WEBHOOK_URL is set"),
        ({"WEBHOOK_URL": URL, "WEBHOOK_SECRET": "hunter2"}, "WEBHOOK_SECRET", "whsec_"),
        ({"WEBHOOK_URL": URL, "WEBHOOK_SECRET": "whsec_c2hvcnQ="}, "WEBHOOK_SECRET", "24 to 64"),
        ({"WEBHOOK_URL": URL, "WEBHOOK_SECRET": "whsec_not base64!"}, "WEBHOOK_SECRET", "whsec_"),
        ({"WEBHOOK_URL": "ftp://example.test/x", "WEBHOOK_SECRET": SECRET}, "WEBHOOK_URL", "http:// or https://"),
        ({"WEBHOOK_URL": URL, "WEBHOOK_SECRET": SECRET, "WEBHOOK_RETRY_HOURS": "2"}, "WEBHOOK_RETRY_HOURS", "24"),
    ],
)
def test_a_webhook_url_needs_a_valid_secret(env, variable, says):
    out = _run({"SECRET_KEY": "k", **env})
    assert out.returncode != 0 and "Traceback" not in out.stderr
    line = next(line for line in out.stderr.splitlines() if line.strip().startswith(variable))
    assert says in line
    # Neither the URL (it may carry a token) nor the secret is ever printed.
    for value in (env.get("WEBHOOK_URL"), env.get("WEBHOOK_SECRET")):
        assert value is None or value not in out.stderr


def test_a_valid_secret_or_no_url_starts():
    assert _run({"SECRET_KEY": "k", "WEBHOOK_URL": URL, "WEBHOOK_SECRET": SECRET}).returncode == 0
    assert _run({"SECRET_KEY": "k"}).returncode == 0  # webhooks off
