"""Settings come from the environment, typed, with safe defaults for a local run, a clear
error naming the variable for a bad value, and a README table that matches the class."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from pydantic import ValidationError

from referral_app.settings import Settings, describe, environment_name, is_loopback_host
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


# --- Placeholder secrets and Redis authentication (issue 18) -----------------------------

_SECRETISH = re.compile(r"SECRET|PASSWORD|PASS$|TOKEN|_KEY$|requirepass", re.IGNORECASE)
_FILES_WITH_PLACEHOLDERS = (".env.example", "compose.yaml", "deploy/kubernetes/secret.yaml")


def _placeholder_candidates(key: str, value: object):
    """The secret values a ``key: value`` of a shipped file holds: the value of a secret-named
    key, a URL's password, a compose default (``${VAR:-x}``) of a secret-named variable."""
    from urllib.parse import unquote, urlsplit

    value = str(value).strip()
    for name, default in re.findall(r"\$\{([A-Za-z0-9_]+):-([^}]*)\}", value):
        if _SECRETISH.search(name) and default:
            yield default
    if "://" in value:
        password = urlsplit(value).password
        if password and "${" not in password:
            yield unquote(password)
    elif _SECRETISH.search(key) and value and "${" not in value:
        yield value


def _placeholders_in(relative: str, text: str) -> set[str]:
    import yaml

    pairs: list[tuple[str, object]] = []
    if relative.endswith(".yaml"):

        def walk(node, key=""):
            if isinstance(node, dict):
                for child_key, child in node.items():
                    walk(child, str(child_key))
            elif isinstance(node, list):
                for previous, child in zip(["", *node], node):  # `--requirepass X`: X under its flag
                    walk(child, str(previous) if isinstance(previous, str) else key)
            else:
                pairs.append((key, node))

        for document in yaml.safe_load_all(text):
            walk(document)
    else:  # KEY=value lines, the commented examples too
        pairs = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=(\S*)", text, flags=re.MULTILINE)
    return {found for key, value in pairs for found in _placeholder_candidates(key, value)}


def test_every_placeholder_the_shipped_files_hold_is_refused():
    """One list (settings.SHIPPED_PLACEHOLDERS) covers every placeholder in the shipped files."""
    from referral_app.settings import SHIPPED_PLACEHOLDERS

    found = {name: _placeholders_in(name, (ROOT / name).read_text()) for name in _FILES_WITH_PLACEHOLDERS}
    # The scan works: it sees the placeholders known to be there.
    assert {"change-me-to-a-long-random-string", "change-me-to-a-random-hex-string", "PASSWORD"} <= found[
        ".env.example"
    ]
    assert {"change-me", "change-me-to-a-long-random-string"} <= found["deploy/kubernetes/secret.yaml"]
    for name, placeholders in found.items():
        assert placeholders <= SHIPPED_PLACEHOLDERS, f"{name}: add to SHIPPED_PLACEHOLDERS: {placeholders - SHIPPED_PLACEHOLDERS}"
    # ... and a placeholder added to a file would be seen.
    added = {
        ".env.example": "# WEBHOOK_SECRET=whsec_fill-me-in\n",
        "compose.yaml": "services:\n  x:\n    command: [redis-server, --requirepass, fill-me]\n"
        "    environment:\n      DATABASE_URL: postgresql://u:fill-me-too@db/x\n      API_TOKEN: ${API_TOKEN:-fill-me-3}\n",
        "deploy/kubernetes/secret.yaml": "stringData:\n  REFLEX_REDIS_URL: redis://:fill-me-4@redis:6379/0\n",
    }
    assert _placeholders_in(".env.example", added[".env.example"]) == {"whsec_fill-me-in"}
    assert _placeholders_in("compose.yaml", added["compose.yaml"]) == {"fill-me", "fill-me-too", "fill-me-3"}
    assert _placeholders_in("deploy/kubernetes/secret.yaml", added["deploy/kubernetes/secret.yaml"]) == {"fill-me-4"}


def _secret_settings(placeholder: str) -> list[tuple[str, dict[str, str]]]:
    """(variable, environment) holding ``placeholder`` as that variable's secret."""
    return [
        ("SECRET_KEY", {"SECRET_KEY": placeholder}),
        ("WEBHOOK_SECRET", {"WEBHOOK_SECRET": placeholder, "WEBHOOK_URL": "https://shop.example/hooks"}),
        ("DATABASE_URL", {"DATABASE_URL": f"postgresql://referral:{placeholder}@db:5432/referral"}),
        ("REFLEX_REDIS_URL", {"REFLEX_REDIS_URL": f"redis://:{placeholder}@redis:6379/0"}),
        ("SMS_WEBHOOK_URL", {"SMS_WEBHOOK_URL": f"https://user:{placeholder}@sms.example/send"}),
        ("WEBHOOK_URL", {"WEBHOOK_URL": f"https://user:{placeholder}@shop.example/hooks",
                         "WEBHOOK_SECRET": "whsec_" + "A" * 44}),
    ]


def _settings_from(monkeypatch, env: dict[str, str]) -> Settings:
    for name in {environment_name(field) for field in Settings.model_fields}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", "a-real-secret-of-the-operator")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def _every_placeholder_case():
    from referral_app.settings import SHIPPED_PLACEHOLDERS

    return [pytest.param(variable, env, id=f"{variable}={placeholder}")
            for placeholder in sorted(SHIPPED_PLACEHOLDERS) for variable, env in _secret_settings(placeholder)]


@pytest.mark.parametrize(("variable", "env"), _every_placeholder_case())
def test_a_placeholder_secret_stops_a_production_start(monkeypatch, variable, env):
    with pytest.raises(ValidationError) as raised:
        _settings_from(monkeypatch, {**env, "DEMO_MODE": "false"})
    text = describe(raised.value)
    assert text.strip().startswith(f"{variable}:") and "placeholder" in text, text


# No placeholder is a well-formed webhook secret: its format is checked in every mode.
@pytest.mark.parametrize(("variable", "env"), [case for case in _every_placeholder_case() if case.values[0] != "WEBHOOK_SECRET"])
def test_demo_mode_accepts_the_placeholders(monkeypatch, variable, env):
    _settings_from(monkeypatch, {**env, "DEMO_MODE": "true"})


def test_the_start_names_the_variable_and_hides_the_value():
    out = _run({"DEMO_MODE": "false", "SECRET_KEY": "a-real-secret", "REFLEX_REDIS_URL": "redis://:change-me@redis:6379/0"})
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "REFLEX_REDIS_URL: " in out.stderr and "placeholder" in out.stderr
    assert "change-me" not in out.stderr and "redis://" not in out.stderr


@pytest.mark.parametrize(
    "url", ["redis://redis:6379/0", "redis://10.0.0.5:6379", "rediss://cache.example:6380/0", "redis://user@redis:6379"]
)
def test_production_refuses_a_remote_redis_without_a_password(monkeypatch, url):
    with pytest.raises(ValidationError) as raised:
        _settings_from(monkeypatch, {"DEMO_MODE": "false", "REFLEX_REDIS_URL": url})
    text = describe(raised.value)
    assert text.strip().startswith("REFLEX_REDIS_URL:") and "without a password" in text
    assert url not in text  # a Redis URL may carry a credential: never shown
    _settings_from(monkeypatch, {"DEMO_MODE": "true", "REFLEX_REDIS_URL": url})  # a demo may


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://localhost:6379",
        "redis://[::1]:6379/0",
        "unix:///run/redis/redis.sock",
        "redis://:a-real-password@redis:6379/0",
        "redis://referral:a-real-password@redis:6379/0",
        "rediss://:a-real-password@cache.example:6380/0",
    ],
)
def test_production_accepts_a_redis_with_a_password_or_on_this_machine(monkeypatch, url):
    assert _settings_from(monkeypatch, {"DEMO_MODE": "false", "REFLEX_REDIS_URL": url}).redis_url == url


def test_one_loopback_rule_and_redis_keeps_the_stricter_one(monkeypatch):
    """``is_loopback_host`` serves the Redis check here and the plain-HTTP warning
    (infra/hosts.py); only the warning takes ``*.localhost`` for this machine."""
    assert is_loopback_host("LOCALHOST") and is_loopback_host("127.0.0.2") and is_loopback_host("[::1]")
    assert is_loopback_host("app.localhost", subdomains=True) and not is_loopback_host("app.localhost")
    assert not is_loopback_host("10.0.0.5", subdomains=True) and not is_loopback_host("localhost.example")
    with pytest.raises(ValidationError):
        _settings_from(monkeypatch, {"DEMO_MODE": "false", "REFLEX_REDIS_URL": "redis://cache.localhost:6379/0"})


def test_the_test_suite_and_make_run_start_in_demo_mode():
    """The suite's own environment (tests/conftest.py) and `make run` (scripts/run.sh: DEMO_MODE=true
    when unset, the generated local secret) still start."""
    from referral_app.settings import settings

    assert settings.demo_mode is True
    out = _run({"DEMO_MODE": "true", "SECRET_KEY": "change-me-to-a-long-random-string"})
    assert out.returncode == 0, out.stderr
    assert 'export DEMO_MODE=true' in (ROOT / "scripts" / "run.sh").read_text()

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
