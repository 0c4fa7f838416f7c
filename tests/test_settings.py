"""Settings come from the environment, with safe defaults for a local run."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

READ_SETTINGS = "from referral_app.settings import settings as s; print(s.database_url, s.demo_mode, s.code_length, s.default_region, s.secret_key)"


def _settings_in_subprocess(env: dict[str, str], cwd=ROOT) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY", "DEMO_MODE"}}
    out = subprocess.run(
        [sys.executable, "-c", READ_SETTINGS], env={**clean, **env}, cwd=cwd, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_environment_overrides_defaults():
    url, demo, length, region, secret = _settings_in_subprocess(
        {"DATABASE_URL": "postgres://u@h/db", "SECRET_KEY": "k", "DEMO_MODE": "false", "CODE_LENGTH": "6", "DEFAULT_REGION": "kz"}
    )
    assert url == "postgresql+psycopg2://u@h/db"
    assert (demo, length, region, secret) == ("False", "6", "KZ", "k")


def test_local_defaults_use_sqlite_demo_mode_and_a_kept_random_secret(tmp_path, monkeypatch):
    from referral_app import settings as settings_module

    secret_file = tmp_path / ".secret_key"
    monkeypatch.setattr(settings_module, "_LOCAL_SECRET_FILE", secret_file)
    first = settings_module._local_secret()
    assert len(first) >= 48 and secret_file.read_text() == first
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    assert settings_module._local_secret() == first

    url, demo, length, region, _ = _settings_in_subprocess({"SECRET_KEY": "k"})
    assert url.startswith("sqlite:///") and url.endswith("referral.db")
    assert (demo, length, region) == ("True", "4", "RU")
