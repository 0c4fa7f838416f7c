"""``python -m referral_app cleanup`` purges the configured database."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

from referral_app.domain import auth
from referral_app.domain.clock import utcnow
from tests.conftest import ROOT


def test_cleanup_command_removes_expired_codes(db):
    auth.request_code(db, "+79120000001", "192.0.2.1", now=utcnow() - timedelta(days=2))
    result = subprocess.run(
        [sys.executable, "-m", "referral_app", "cleanup"], cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "removed 1 codes, 0 sessions, 1 send-log rows" in result.stdout


def test_unknown_command_fails_with_usage():
    result = subprocess.run([sys.executable, "-m", "referral_app", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0 and "usage" in result.stderr
