"""Safe production defaults: demo mode (codes on the page and in API answers) is off unless
set; only `make run` (scripts/run.sh) turns it on for a local run, and says so."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from referral_app.settings import Settings, environment_name
from tests.conftest import ROOT

RUN_SH = ROOT / "scripts" / "run.sh"


def test_the_app_defaults_to_demo_mode_off():
    names = {environment_name(field) for field in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k not in names} | {"SECRET_KEY": "k"}
    out = subprocess.run([sys.executable, "-c", "from referral_app.settings import settings; print(settings.demo_mode)"],
                         env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert Settings.model_fields["demo_mode"].default is False


def run_sh_demo_block(demo_mode: str | None) -> subprocess.CompletedProcess:
    """The lines of scripts/run.sh that decide the demo mode, run as the script runs them."""
    lines = RUN_SH.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# A first local run"))
    end = next(i for i in range(start, len(lines)) if lines[i] == "fi")
    block = "\n".join(lines[start : end + 1])
    env = {k: v for k, v in os.environ.items() if k != "DEMO_MODE"}
    if demo_mode is not None:
        env["DEMO_MODE"] = demo_mode
    return subprocess.run(["bash", "-c", f"set -euo pipefail\n{block}\necho \"DEMO_MODE=$DEMO_MODE\""],
                          env=env, capture_output=True, text=True, check=True)


def test_make_run_turns_demo_mode_on_when_unset_and_says_so():
    out = run_sh_demo_block(None)
    assert out.stdout.strip() == "DEMO_MODE=true"
    assert "demo mode for this local run" in out.stderr and "DEMO_MODE=false" in out.stderr
    for chosen in ("false", "true"):
        out = run_sh_demo_block(chosen)
        assert out.stdout.strip() == f"DEMO_MODE={chosen}" and out.stderr == ""


def test_the_image_and_compose_keep_demo_mode_off():
    for path in ("Dockerfile", "scripts/docker-entrypoint.sh", "scripts/serve_prebuilt.py"):
        assert "DEMO_MODE" not in (ROOT / path).read_text(), path
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        value = str((service.get("environment") or {}).get("DEMO_MODE", "${DEMO_MODE:-false}"))
        assert value in ("${DEMO_MODE:-false}", "false"), (name, value)
