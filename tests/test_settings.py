"""Settings come from the environment, typed, with safe defaults for a local run, a clear
error naming the variable for a bad value, and a README table that matches the class."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from pydantic import ValidationError

from referral_app.settings import Settings, describe, environment_name
from tests.conftest import ROOT

READ_SETTINGS = (
    "from referral_app.settings import settings as s; "
    "print(s.database_url, s.demo_mode, s.code_length, s.default_region, s.secret_key)"
)
# Read by the start scripts (scripts/run.sh, the container's entrypoint), not by the app.
SCRIPT_VARIABLES = {"PORT", "WORKERS", "HOST"}


def _clean_environment(env: dict[str, str]) -> dict[str, str]:
    names = {environment_name(field) for field in Settings.model_fields}
    return {**{k: v for k, v in os.environ.items() if k not in names}, **env}


def _run(env: dict[str, str], cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", READ_SETTINGS], env=_clean_environment(env), cwd=cwd, capture_output=True, text=True
    )


def _settings_in_subprocess(env: dict[str, str]) -> list[str]:
    out = _run(env)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_environment_overrides_defaults():
    url, demo, length, region, secret = _settings_in_subprocess(
        {"DATABASE_URL": "postgres://u@h/db", "SECRET_KEY": "k", "DEMO_MODE": "false", "CODE_LENGTH": "6", "DEFAULT_REGION": "kz"}
    )
    assert url == "postgresql+psycopg2://u@h/db"
    assert (demo, length, region, secret) == ("False", "6", "KZ", "k")


def test_local_defaults_use_sqlite_and_a_kept_random_secret(tmp_path, monkeypatch):
    from referral_app import settings as settings_module

    secret_file = tmp_path / ".secret_key"
    monkeypatch.setattr(settings_module, "_LOCAL_SECRET_FILE", secret_file)
    first = settings_module._local_secret()
    assert len(first) >= 48 and secret_file.read_text() == first
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    assert settings_module._local_secret() == first

    url, _demo, length, region, _ = _settings_in_subprocess({"SECRET_KEY": "k"})
    assert url.startswith("sqlite:///") and url.endswith("referral.db")
    assert (length, region) == ("4", "RU")


def test_an_empty_variable_counts_as_unset():
    _url, _demo, length, region, _ = _settings_in_subprocess({"SECRET_KEY": "k", "CODE_LENGTH": "", "DEFAULT_REGION": ""})
    assert (length, region) == ("4", "RU")


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("CODE_LENGTH", "abc", "valid integer"),
        ("CODE_LENGTH", "2", "greater than or equal to 4"),
        ("DEMO_MODE", "maybe", "valid boolean"),
        ("TRUSTED_PROXIES", "10.0.0.0/8, bogus", "'bogus' is not an IP address or network"),
        ("SMS_DELAY_SECONDS", "3-1", "low <= high"),
        ("SMS_DELAY_SECONDS", "soon", "number or a range"),
        ("DEFAULT_REGION", "zz", "not a region code"),
        ("LOG_LEVEL", "LOUD", "DEBUG"),
        ("REFERRAL_PAGE_SIZE", "1000", "less than or equal to 100"),
        ("DEFAULT_LANGUAGE", "english", "pattern"),
        ("DEFAULT_LANGUAGE", "de", "no catalogue for 'de'"),
        ("DB_POOL_SIZE", "0", "greater than or equal to 1"),
        ("DB_MAX_OVERFLOW", "-1", "greater than or equal to 0"),
        ("METRICS_ALLOWED_NETWORKS", "127.0.0.1, anywhere", "'anywhere' is not an IP address or network"),
    ],
)
def test_a_bad_value_stops_the_start_naming_the_variable(variable, value, says):
    out = _run({"SECRET_KEY": "k", variable: value})
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    line = next(line for line in out.stderr.splitlines() if line.strip().startswith(variable))
    assert says in line and repr(value) in line


def test_an_error_about_a_credential_never_shows_its_value():
    with pytest.raises(ValidationError) as raised:
        Settings(database_url=12345, secret_key="x")  # a number where a URL belongs
    text = describe(raised.value)
    assert text.strip().startswith("DATABASE_URL:") and "12345" not in text


def _readme_settings_table() -> dict[str, str]:
    """``{VARIABLE: default cell}`` from README's "Settings" table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| ([^|]*) \|", section, flags=re.MULTILINE)
    assert rows, "README has no settings table"
    return {name: cell.strip() for name, cell in rows}


def _as_readme_default(value) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value in ("", ()):
        return "empty"
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(x, float) for x in value):
        low, high = (f"{x:g}" for x in value)
        return f"`{low}-{high}`" if low != high else f"`{low}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def test_the_readme_table_lists_every_setting_and_nothing_else():
    documented = set(_readme_settings_table())
    in_class = {environment_name(field) for field in Settings.model_fields}
    assert documented - SCRIPT_VARIABLES == in_class


def test_the_readme_table_gives_the_real_defaults():
    table = _readme_settings_table()
    for field, info in Settings.model_fields.items():
        if info.default_factory is not None:
            continue  # computed (the SQLite path, the generated secret): described in words
        name = environment_name(field)
        assert table[name] == _as_readme_default(info.default), name


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"TRUSTED_PROXIES": "10.0.0.0/8"}, "TRUSTED_PROXIES: 10.0.0.0/8 is a whole network"),
        ({"TRUSTED_PROXIES": "172.30.89.10, 172.30.0.0/16"}, "TRUSTED_PROXIES: 172.30.0.0/16 is a whole network"),
        ({"TRUSTED_PROXIES": "2001:db8::/32"}, "TRUSTED_PROXIES: 2001:db8::/32 is a whole network"),
        # The default METRICS_ALLOWED_NETWORKS (loopback) and a proxy on loopback.
        ({"TRUSTED_PROXIES": "127.0.0.1"}, "METRICS_ALLOWED_NETWORKS: 127.0.0.0/8 overlaps TRUSTED_PROXIES 127.0.0.1"),
        (
            {"TRUSTED_PROXIES": "10.1.2.3", "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8"},
            "METRICS_ALLOWED_NETWORKS: 10.0.0.0/8 overlaps TRUSTED_PROXIES 10.1.2.3",
        ),
    ],
)
def test_production_trusts_exactly_the_proxy(env, says):
    """Outside the demo, a whole private range as TRUSTED_PROXIES, or metrics networks that
    share an address with it, stop the start with a message naming the variable (and
    never showing another variable's value, a secret's least of all)."""
    out = _run({"SECRET_KEY": "k-do-not-show", "DEMO_MODE": "false", **env})
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert says in out.stderr, out.stderr
    assert "k-do-not-show" not in out.stderr
    # The demo (make run) is not a deployment: the same values start.
    assert _run({"SECRET_KEY": "k", "DEMO_MODE": "true", **env}).returncode == 0


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"TRUSTED_PROXIES": "172.30.89.10"},  # compose.yaml's proxy
        {"TRUSTED_PROXIES": "10.1.2.3, 10.1.2.4, 192.0.2.0/28", "METRICS_ALLOWED_NETWORKS": "10.9.0.0/24"},
        {"TRUSTED_PROXIES": "127.0.0.2", "METRICS_ALLOWED_NETWORKS": "127.0.0.1/32,::1/128"},
    ],
)
def test_production_starts_with_proxies_named_exactly(env):
    out = _run({"SECRET_KEY": "k", "DEMO_MODE": "false", **env})
    assert out.returncode == 0, out.stderr
