"""The container files: Dockerfile, .dockerignore, compose.yaml, .env.example and the
scripts they run.

No Docker engine runs here, so the image is never built. Instead: compose.yaml is
validated against the Compose specification (the schema that check-jsonschema ships),
the Dockerfile is linted by hadolint, their promises are checked one by one, and the
scripts the image runs are run here: the bun install step (with a stand-in npm, so no
network), the entrypoint's commands, and the server that serves a prebuilt frontend.
Everything runs offline in a few seconds.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, create_test_database

BIN = Path(sys.executable).parent  # the virtualenv's bin: check-jsonschema, hadolint, reflex
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
INSTALL_BUN = ROOT / "scripts" / "install-bun.sh"
BOOTSTRAP = ROOT / "scripts" / "bootstrap.sh"
ENTRYPOINT = ROOT / "scripts" / "docker-entrypoint.sh"
SERVE_PREBUILT = ROOT / "scripts" / "serve_prebuilt.py"

# An exact version (3.11.14, 15.14, 7.4.5-bookworm) or a digest; never "latest" or a
# moving major tag such as "15" or "7".
PINNED_IMAGE = re.compile(r"^[a-z0-9./_-]+(:\d+\.\d+(\.\d+)?[a-z0-9._-]*)?(@sha256:[0-9a-f]{64})?$")


def _tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: install requirements-dev.txt (scripts/bootstrap.sh --dev)")
    return path


# --- Dockerfile ---------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile_stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """[(stage name, its instructions)]; the FROM instruction opens each stage."""
    stages: list[tuple[str, list[tuple[str, str]]]] = []
    for keyword, args in dockerfile_instructions():
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else ""
            stages.append((name, []))
        assert stages, f"{keyword} before the first FROM"
        stages[-1][1].append((keyword, args))
    return stages


def test_dockerfile_passes_hadolint(tmp_path):
    """No finding at any level (error, warning, info, style); ignores are inline, with a reason."""
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}  # no personal config
    result = subprocess.run(
        [str(_tool("hadolint")), "--no-color", "--failure-threshold", "style", "--format", "json", "Dockerfile"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    assert result.returncode == 0 and findings == [], json.dumps(findings, indent=1) + result.stderr

    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            reason = lines[number - 1].strip() if number else ""
            assert reason.startswith("#") and "hadolint" not in reason, (
                f"Dockerfile line {number + 1}: say why the rule is ignored in a comment just above it"
            )


def test_hadolint_finds_what_it_should(tmp_path):
    """The linter in the test really lints: a bad Dockerfile fails."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run(
        [str(_tool("hadolint")), "--no-color", "--failure-threshold", "style", "--format", "json", str(bad)],
        env={**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert result.returncode != 0 and {"DL3007", "DL3008", "DL3009", "DL3015"} <= codes


def test_dockerfile_is_multi_stage_on_one_pinned_base():
    stages = dockerfile_stages()
    names = [name for name, _ in stages]
    assert len(stages) >= 2 and "build" in names, names
    external = []
    for name, instructions in stages:
        image = instructions[0][1].split()[0]
        if image not in names:
            external.append(image)
            assert PINNED_IMAGE.match(image) and ":" in image, f"stage {name}: {image} is not pinned to a version"
            assert not image.endswith(":latest")
    # One base for every stage, so the venv built in one runs in the other.
    assert len(set(external)) == 1 and re.match(r"python:3\.11\.\d+-slim-bookworm\b", external[0]), external
    # The runtime stage takes only what the build stage made.
    runtime = stages[-1][1]
    assert any(k == "COPY" and "--from=build" in a and "/opt/venv" in a for k, a in runtime)
    assert any(k == "COPY" and "--from=build" in a and "/app" in a for k, a in runtime)
    for keyword, args in runtime:
        assert not (keyword == "RUN" and re.search(r"\b(npm|bun|apt-get install)\b", args)), args


def test_dockerfile_runs_as_a_non_root_user():
    runtime = dockerfile_stages()[-1][1]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, users[-1]
    # Nothing after USER needs root again.
    after = runtime[[k for k, _ in runtime].index("USER") + 1 :]
    assert not any(keyword == "RUN" for keyword, _ in after), after


def test_dockerfile_healthcheck_stop_signal_and_exec_form():
    runtime = dict(dockerfile_stages()[-1][1])
    healthcheck = runtime.get("HEALTHCHECK", "")
    assert "CMD" in healthcheck and "NONE" not in healthcheck.upper().split(), healthcheck
    assert '["/app/scripts/docker-entrypoint.sh", "healthcheck"]' in healthcheck
    assert "/api/health" in ENTRYPOINT.read_text()
    # Granian, which the entrypoint execs, stops gracefully on either.
    assert runtime.get("STOPSIGNAL") in {"SIGTERM", "SIGINT"}
    # Exec form: no shell between Docker and the server, so the signal reaches it.
    for keyword in ("ENTRYPOINT", "CMD"):
        assert isinstance(json.loads(runtime[keyword]), list), f"{keyword} is not in exec form"
    assert json.loads(runtime["ENTRYPOINT"]) == ["/app/scripts/docker-entrypoint.sh"]
    assert json.loads(runtime["CMD"]) == ["serve"]
    assert runtime.get("EXPOSE") == "3000"


def test_frontend_is_built_into_the_image_and_not_at_start():
    build = dict(dockerfile_stages())["build"]
    runs = [args for keyword, args in build if keyword == "RUN"]
    assert any("reflex export --frontend-only --no-zip" in args for args in runs), runs
    # The server only mounts the built files; the start command neither compiles nor migrates.
    serve_branch = ENTRYPOINT.read_text().split("serve)", 1)[1].split(";;", 1)[0]
    assert "scripts/serve_prebuilt.py" in serve_branch
    assert "reflex run" not in serve_branch and "migrate" not in serve_branch
    assert "from referral_app.infra.frontend import serve_prebuilt" in SERVE_PREBUILT.read_text()
    assert "mount_frontend_compiled_app=True" in (ROOT / "referral_app/infra/framework/reflex_frontend.py").read_text()


def test_exported_commands_exist_in_this_reflex():
    """The commands the Dockerfile and the entrypoint call exist, with those options."""
    reflex = _tool("reflex")
    export = subprocess.run([str(reflex), "export", "--help"], capture_output=True, text=True, timeout=120)
    assert export.returncode == 0 and "--frontend-only" in export.stdout and "--no-zip" in export.stdout
    migrate = subprocess.run([str(reflex), "db", "migrate", "--help"], capture_output=True, text=True, timeout=120)
    assert migrate.returncode == 0, migrate.stderr


def test_bun_comes_from_the_one_install_script():
    """The Dockerfile and scripts/bootstrap.sh (make run, make test) share the bun step."""
    build = dict(dockerfile_stages())["build"]
    runs = " ".join(args for keyword, args in build if keyword == "RUN")
    assert "scripts/install-bun.sh" in runs
    assert any(k == "COPY" and "scripts/install-bun.sh" in a for k, a in build)
    assert "scripts/install-bun.sh" in BOOTSTRAP.read_text()
    # The version and the package names live in that script alone.
    for other in (DOCKERFILE, BOOTSTRAP):
        assert "@oven/bun" not in other.read_text(), other
        assert "BUN_VERSION" not in other.read_text(), other
    assert re.search(r'^BUN_VERSION="\d+\.\d+\.\d+"$', INSTALL_BUN.read_text(), re.M)


def test_build_context_holds_what_the_dockerfile_copies_and_no_secrets():
    allowed = [
        line.strip().lstrip("!").rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip().startswith("!")
    ]
    assert DOCKERIGNORE.read_text().splitlines()[
        next(i for i, line in enumerate(DOCKERIGNORE.read_text().splitlines()) if line and not line.startswith("#"))
    ] == "*", ".dockerignore should start from '*' (an allow-list)"
    for secret in (".env", ".secret_key", "referral.db", ".venv", ".web", ".tools"):
        assert secret not in allowed
    for keyword, args in dockerfile_instructions():
        if keyword != "COPY" or "--from=" in args:
            continue
        *sources, _destination = args.split()
        for source in sources:
            path = source.rstrip("/")
            assert (ROOT / path).exists(), f"COPY {source}: no such file"
            assert path in allowed, f"COPY {source}: excluded by .dockerignore"
    for script in (INSTALL_BUN, ENTRYPOINT):
        assert script.stat().st_mode & stat.S_IXUSR, f"{script} is not executable"


# --- compose.yaml ---------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose_variables() -> set[str]:
    text = COMPOSE.read_text().replace("$$", "")
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text)) | set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", text))


def documented_variables() -> set[str]:
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))


def test_compose_matches_the_compose_specification():
    result = subprocess.run(
        [str(_tool("check-jsonschema")), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_rejects_a_broken_file(tmp_path):
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  app:\n    image: x:1.0\n    depends_on:\n      db:\n        condition: sometime\n")
    result = subprocess.run(
        [str(_tool("check-jsonschema")), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0


def test_compose_services_and_their_order():
    services = compose()["services"]
    assert {"db", "pgbouncer", "redis", "migrate", "app", "proxy"} <= set(services)

    for name in ("db", "redis", "proxy"):
        image = services[name]["image"]
        assert PINNED_IMAGE.match(image) and ":" in image, f"{name}: {image} is not pinned to a version"
    for name in ("db", "redis"):
        assert "healthcheck" in services[name] and services[name]["healthcheck"]["test"], name
    assert services["db"]["image"].startswith("postgres:15.")
    assert services["redis"]["image"].startswith("redis:7.")
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]

    volume = services["db"]["volumes"][0].split(":")[0]
    assert volume in compose()["volumes"], "the database lives on a named volume"

    migrate, app = services["migrate"], services["app"]
    assert migrate["image"] == app["image"] and migrate["build"] == app["build"]
    assert "args" not in app["build"], "the image serves any address: nothing is built in"
    assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert app["command"] == ["serve"]
    assert app["depends_on"] == {
        "pgbouncer": {"condition": "service_started"},
        "redis": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    # Any number of replicas: no fixed host port, no container name.
    assert "ports" not in app and "container_name" not in app
    assert app["expose"] == ["3000"]
    # Redis asks for a password, the app's URL carries it (the health check's redis-cli too).
    password = "${REDIS_PASSWORD:?set REDIS_PASSWORD in .env (see .env.example)}"
    assert app["environment"]["REFLEX_REDIS_URL"] == f"redis://:{password}@redis:6379/0"
    command = services["redis"]["command"]
    assert command[command.index("--requirepass") + 1] == password
    assert services["redis"]["environment"]["REDISCLI_AUTH"] == password
    # The app through PgBouncer, the migration straight to PostgreSQL.
    assert "@pgbouncer:6432/" in app["environment"]["DATABASE_URL"]
    assert "@db:5432/" in migrate["environment"]["DATABASE_URL"]
    assert "WORKERS" in app["environment"]
    assert app["healthcheck"]["test"] == ["CMD", "/app/scripts/docker-entrypoint.sh", "healthcheck"]
    assert app["read_only"] is True and app["tmpfs"] == ["/tmp"]
    for service in (migrate, app):
        assert service["env_file"] in (".env", [".env"], [{"path": ".env", "required": True}])
        assert "SECRET_KEY" in service["environment"] and "DATABASE_URL" in service["environment"]

    # The proxy: the same nginx configuration as the scale-out test, in front of `app`.
    proxy = services["proxy"]
    assert proxy["depends_on"] == {"app": {"condition": "service_healthy"}}
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in proxy["volumes"]}
    assert mounts == {
        "./deploy/nginx/compose.conf": "/etc/nginx/conf.d/default.conf",
        "./deploy/nginx/referral-http.conf": "/etc/nginx/referral-http.conf",
        "./deploy/nginx/tls-front.conf": "/etc/nginx/tls-front.conf",
        "./deploy/nginx/referral-proxy.conf": "/etc/nginx/referral-proxy.conf",
    }
    for source in mounts:
        assert (ROOT / source).is_file(), source
    conf = (ROOT / "deploy" / "nginx" / "compose.conf").read_text()
    assert re.search(r"server app:3000 resolve max_fails=\d+ fail_timeout=\d+s;", conf)
    assert "include /etc/nginx/referral-proxy.conf;" in conf and "listen 8080;" in conf
    assert "include /etc/nginx/referral-http.conf;" in conf and "include /etc/nginx/tls-front.conf;" in conf
    assert any(str(port).endswith(":8080") for port in proxy["ports"])

    pgbouncer = services["pgbouncer"]
    assert pgbouncer["build"] == {"context": "deploy/pgbouncer"}
    assert pgbouncer["environment"]["DB_HOST"] == "db" and "ports" not in pgbouncer


def test_the_pgbouncer_image_passes_hadolint(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    dockerfile = ROOT / "deploy" / "pgbouncer" / "Dockerfile"
    result = subprocess.run(
        [str(_tool("hadolint")), "--no-color", "--failure-threshold", "style", "--format", "json", str(dockerfile)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and json.loads(result.stdout or "[]") == [], result.stdout + result.stderr
    text = dockerfile.read_text()
    assert re.search(r"^FROM debian:\d+\.\d+-slim$", text, re.M) and re.search(r"^USER 10002:10002$", text, re.M)


def test_compose_trusts_exactly_the_proxy():
    """The app believes X-Forwarded-For and X-Forwarded-Proto from nginx's own fixed
    address only: not the network's other containers, not Docker's gateway (through
    which published ports can arrive), and no container can be handed that address.
    /metrics stays on loopback, which no client address through the proxy can be."""
    import ipaddress

    from referral_app.settings import Settings

    ipam = compose()["networks"]["default"]["ipam"]["config"][0]
    subnet, dynamic = ipaddress.ip_network(ipam["subnet"]), ipaddress.ip_network(ipam["ip_range"])
    services = compose()["services"]
    proxy_address = ipaddress.ip_address(services["proxy"]["networks"]["default"]["ipv4_address"])
    assert proxy_address in subnet and proxy_address not in dynamic and dynamic.subnet_of(subnet)
    assert proxy_address != next(subnet.hosts()), "the gateway's address"
    environment = services["app"]["environment"]
    assert environment["TRUSTED_PROXIES"] == f"${{TRUSTED_PROXIES:-{proxy_address}}}"
    trusted = interpolate(environment["TRUSTED_PROXIES"], {})
    assert [ipaddress.ip_network(item).num_addresses for item in trusted.split(",")] == [1]
    assert "METRICS_ALLOWED_NETWORKS" not in environment  # the app's default: loopback
    metrics = Settings.model_fields["metrics_allowed_networks"].default_factory()
    assert not any(ipaddress.ip_network(item).overlaps(subnet) for item in metrics)
    # As shipped, the settings start in production (no demo mode).
    Settings(demo_mode=False, trusted_proxies=trusted, secret_key="k")


def test_compose_has_no_literal_secrets():
    text = COMPOSE.read_text()
    for required in ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert "${" + required + ":?" in text, "required values need ${VAR:?message}"
    services = compose()["services"]
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            if re.search(r"SECRET|PASSWORD|TOKEN|_KEY$", key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", value), f"{name}.{key} is not taken from .env"
            # A URL's password: what is left after removing the ${...} references.
            literal = re.sub(r"\$\{[^}]*\}", "", value)
            assert not re.search(r"://[^/@]*:[^/@]+@", literal), f"{name}.{key}: literal password in a URL"


def test_every_compose_variable_is_documented():
    missing = compose_variables() - documented_variables()
    assert not missing, f"add to .env.example: {sorted(missing)}"


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} (and $$ for a literal $)."""

    def replace(match: re.Match) -> str:
        name, operator, argument = match.group(1), match.group(2) or "", match.group(3) or ""
        value = values.get(name, "")
        if operator == ":?" and not value:
            raise ValueError(f"{name}: {argument}")
        if operator == ":-" and not value:
            return argument
        return value

    text = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}", replace, text.replace("$$", "\0"))
    return text.replace("\0", "$")


def interpolate_tree(node, values: dict[str, str]):
    """Interpolate every string of the parsed file, as Compose does (values stay strings)."""
    if isinstance(node, dict):
        return {key: interpolate_tree(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, values) for value in node]
    return interpolate(node, values) if isinstance(node, str) else node


def env_example_values() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_compose_with_the_example_settings():
    values = env_example_values()
    assert set(values) >= {"SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"}
    services = interpolate_tree(compose(), values)["services"]
    app = services["app"]["environment"]
    migrate = services["migrate"]["environment"]
    assert migrate["DATABASE_URL"] == f"postgresql://referral:{values['POSTGRES_PASSWORD']}@db:5432/referral"
    assert app["SECRET_KEY"] == values["SECRET_KEY"]
    assert app["DEMO_MODE"] == "false"
    assert services["db"]["environment"]["POSTGRES_PASSWORD"] == values["POSTGRES_PASSWORD"]
    assert services["proxy"]["ports"] == ["0.0.0.0:3000:8080"]
    assert services["app"]["environment"]["DATABASE_URL"] == (
        f"postgresql://referral:{values['POSTGRES_PASSWORD']}@pgbouncer:6432/referral"
    )
    assert services["pgbouncer"]["environment"]["DB_PASSWORD"] == values["POSTGRES_PASSWORD"]
    assert app["REFLEX_REDIS_URL"] == f"redis://:{values['REDIS_PASSWORD']}@redis:6379/0"
    assert services["redis"]["command"][-2:] == ["--requirepass", values["REDIS_PASSWORD"]]
    assert '"$POSTGRES_USER"' in " ".join(services["db"]["healthcheck"]["test"])
    for required in ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        with pytest.raises(ValueError, match=required):
            interpolate_tree(compose(), {**values, required: ""})


# --- .env.example -------------------------------------------------------------------------


def variables_the_app_reads() -> set[str]:
    from referral_app.settings import Settings, environment_name

    return {environment_name(field) for field in Settings.model_fields}


def test_env_example_documents_every_setting():
    app_settings = variables_the_app_reads()
    assert {"SECRET_KEY", "DATABASE_URL", "DEMO_MODE"} <= app_settings  # the scan works
    missing = (app_settings | {"WORKERS"}) - documented_variables()
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_env_example_holds_placeholders_only():
    values = env_example_values()
    for name in ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert values[name].startswith("change-me"), name
    assert values.get("DEMO_MODE", "false") == "false"
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, timeout=30)
        assert ignored.returncode == 0, ".env must be git-ignored"


# --- scripts/install-bun.sh ------------------------------------------------------------------

FAKE_NPM = """#!/bin/sh
# Stands in for npm: records its arguments and "installs" a bun that prints the version.
echo "$@" >> "$FAKE_NPM_LOG"
prefix=""; package=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        -*) shift ;;
        *) package="$1"; shift ;;
    esac
done
name="${package%@*}"; version="${package##*@}"
mkdir -p "$prefix/node_modules/$name/bin"
printf '#!/bin/sh\\necho %s\\n' "$version" > "$prefix/node_modules/$name/bin/bun"
chmod +x "$prefix/node_modules/$name/bin/bun"
"""


def test_install_bun_installs_once_from_npm(tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "npm").write_text(FAKE_NPM)
    (fake_bin / "npm").chmod(0o755)
    log = tmp_path / "npm.log"
    env = {**os.environ, "PATH": f"{fake_bin}:/usr/bin:/bin", "FAKE_NPM_LOG": str(log)}
    target = tmp_path / "tools" / "bun"
    version = re.search(r'^BUN_VERSION="(.+)"$', INSTALL_BUN.read_text(), re.M).group(1)

    first = subprocess.run([str(INSTALL_BUN), str(target)], env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    bun = Path(first.stdout.strip())
    assert bun.is_file() and bun.is_relative_to(target) and re.search(r"@oven/bun-linux-[a-z0-9-]+/bin/bun$", str(bun))
    calls = log.read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith("install ") and f"--prefix {target}" in calls[0]
    assert re.search(rf"@oven/bun-linux-[a-z0-9-]+@{re.escape(version)}$", calls[0])

    # Installed: no npm call at all (a second run is the quick path of every `make`).
    (fake_bin / "npm").write_text("#!/bin/sh\nexit 99\n")
    again = subprocess.run([str(INSTALL_BUN), str(target)], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stdout.strip() == str(bun), again.stderr
    assert len(log.read_text().splitlines()) == 1

    # A failing npm fails the script, with npm's output.
    failing = subprocess.run(
        [str(INSTALL_BUN), str(tmp_path / "other")], env=env, capture_output=True, text=True, timeout=60
    )
    assert failing.returncode != 0 and failing.stdout == "" and "FAILED" in failing.stderr


def test_install_bun_usage():
    result = subprocess.run([str(INSTALL_BUN)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "usage" in result.stderr


def test_bootstrap_uses_the_installed_bun():
    """What scripts/bootstrap.sh exported for this run is the script's bun (when bootstrapped)."""
    if "REFLEX_BUN_PATH" not in os.environ:
        pytest.skip("not started through scripts/bootstrap.sh (make test)")
    result = subprocess.run(
        [str(INSTALL_BUN), str(ROOT / ".tools" / "bun")],
        env={**os.environ, "PATH": "/usr/bin:/bin", "npm_config_offline": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip() == os.environ["REFLEX_BUN_PATH"], result.stderr


# --- scripts/docker-entrypoint.sh ---------------------------------------------------------


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 - the http.server API
        body = json.dumps({"database": "ok", "redis": "ok"}).encode()
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    server.status = 200  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _entrypoint(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ENTRYPOINT), *args], env=env or dict(os.environ), capture_output=True, text=True, timeout=60
    )


def test_entrypoint_healthcheck(health_server):
    url = f"http://127.0.0.1:{health_server.server_address[1]}/api/health"
    env = {**os.environ, "HEALTHCHECK_URL": url}
    assert _entrypoint("healthcheck", env=env).returncode == 0
    health_server.status = 503
    failing = _entrypoint("healthcheck", env=env)
    assert failing.returncode != 0 and "503" in failing.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    down = _entrypoint("healthcheck", env={**os.environ, "HEALTHCHECK_URL": f"http://127.0.0.1:{closed_port}/"})
    assert down.returncode != 0 and "unhealthy" in down.stderr


@pytest.mark.parametrize("command", ["serve", "migrate"])
@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL"])
def test_entrypoint_refuses_to_start_without_settings(command, missing):
    env = {**os.environ, "SECRET_KEY": "x", "DATABASE_URL": "postgresql://u:p@db/x"}
    del env[missing]
    result = _entrypoint(command, env=env)
    assert result.returncode == 2 and f"{missing} is not set" in result.stderr


def _fake_python(tmp_path: Path) -> dict[str, str]:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "python").write_text(
        '#!/bin/sh\necho "cwd=$(pwd) workers=${GRANIAN_WORKERS:-unset} web=${REFLEX_WEB_WORKDIR:-unset}'
        ' states=${REFLEX_STATES_WORKDIR:-unset} metrics=${PROMETHEUS_MULTIPROC_DIR:-unset} args=$*"\n'
    )
    (fake_bin / "python").chmod(0o755)
    return {**os.environ, "PATH": f"{fake_bin}:/usr/bin:/bin", "SECRET_KEY": "x", "DATABASE_URL": "sqlite://"}


def _image_like_app_dir(tmp_path: Path) -> Path:
    """An app directory laid out as in the image: the entrypoint and a built frontend."""
    app = tmp_path / "app"
    (app / "scripts").mkdir(parents=True)
    shutil.copy2(ENTRYPOINT, app / "scripts" / "docker-entrypoint.sh")
    (app / ".web" / "build" / "client").mkdir(parents=True)
    (app / ".web" / "build" / "client" / "index.html").write_text("built")
    return app


def test_entrypoint_serve_command_and_workers(tmp_path):
    env = _fake_python(tmp_path)
    app = _image_like_app_dir(tmp_path)
    run_dir = tmp_path / "run"
    env["RUN_DIR"] = str(run_dir)
    for name in ("GRANIAN_WORKERS", "REFLEX_REDIS_URL", "REFLEX_WEB_WORKDIR", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    entrypoint = str(app / "scripts" / "docker-entrypoint.sh")

    def serve(extra: dict[str, str]) -> str:
        result = subprocess.run([entrypoint, "serve"], env={**env, **extra}, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    (run_dir / "metrics").mkdir(parents=True)
    (run_dir / "metrics" / "counter_123.db").write_text("left over by the last start")
    alone = serve({})
    assert alone == (
        f"cwd={app} workers=unset web={run_dir}/web states={run_dir}/states metrics={run_dir}/metrics"
        " args=scripts/serve_prebuilt.py --host 0.0.0.0 --port 3000"
    )
    # The server gets a copy of the build, and the metrics of an earlier start are gone.
    assert (run_dir / "web" / "build" / "client" / "index.html").read_text() == "built"
    assert list((run_dir / "metrics").iterdir()) == []
    with_redis = {"REFLEX_REDIS_URL": "redis://redis:6379/0"}
    assert "workers=3 " in serve({**with_redis, "WORKERS": "3"})
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    assert f"workers={nproc} " in serve({**with_redis, "WORKERS": ""})
    # Any other command runs as given, in the app directory.
    other = subprocess.run([entrypoint, "python", "-c", "pass"], env=env, capture_output=True, text=True, timeout=60)
    assert other.stdout.startswith(f"cwd={app} ")
    # Without a build the server does not start.
    (app / ".web" / "build" / "client" / "index.html").unlink()
    missing = subprocess.run([entrypoint, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and ".web/build/client is missing" in missing.stderr


# --- scripts/serve_prebuilt.py: the container's server -----------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.stat().st_size) for p in directory.rglob("*")}


@pytest.mark.e2e
def test_server_serves_a_prebuilt_frontend_without_building_and_stops_on_sigterm(tmp_path):
    """The image's server: the built files, the API and the health check on one port;
    nothing is compiled or built at start, and SIGTERM ends it cleanly."""
    web = tmp_path / "web"
    client = web / "build" / "client"
    client.mkdir(parents=True)
    (client / "index.html").write_text("<!doctype html><title>prebuilt-marker</title>")
    before = _snapshot(web / "build")
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": create_test_database("deploy"), "SECRET_KEY": "deploy-test-secret"}
    env.update(
        REFLEX_WEB_WORKDIR=str(web),
        REFLEX_STATES_WORKDIR=str(tmp_path / "states"),
        REFLEX_TELEMETRY_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    for name in ("REFLEX_REDIS_URL", "GRANIAN_WORKERS", "REFLEX_ENV_MODE", "REFLEX_SKIP_COMPILE"):
        env.pop(name, None)
    log = tmp_path / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(SERVE_PREBUILT), "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-4000:]
            try:
                with urllib.request.urlopen(base + "/", timeout=2) as response:
                    page = response.read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-4000:]
                time.sleep(0.3)
        assert "prebuilt-marker" in page
        with urllib.request.urlopen(base + "/api/docs", timeout=10) as response:
            assert response.status == 200
        try:
            with urllib.request.urlopen(base + "/api/health", timeout=10) as response:
                status, body = response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        assert status == 200 and body["database"] == "ok", body
        # The built frontend is only read. (The backend's own marker of the pages that
        # create state, .web/backend/stateful_pages.json, is written by the build in the
        # image; here, without it, the server writes it.)
        assert _snapshot(web / "build") == before, "the server changed the built frontend"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, log.read_text()[-4000:]


def test_server_refuses_to_start_without_a_build(tmp_path):
    env = {**os.environ, "REFLEX_WEB_WORKDIR": str(tmp_path / "empty"), "SECRET_KEY": "x"}
    result = subprocess.run(
        [sys.executable, str(SERVE_PREBUILT), "--port", str(_free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "reflex export --frontend-only --no-zip" in result.stderr
