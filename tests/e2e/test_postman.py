"""The Postman collection in postman/, run by newman against the app as `make run` starts it.

newman comes from `scripts/bootstrap.sh --dev` (NEWMAN_BIN, or .tools/newman). A missing
newman is a failure, not a skip: the collection must never rot unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT

COLLECTION = ROOT / "postman" / "referral-api.postman_collection.json"
DEFAULT_NEWMAN = ROOT / ".tools" / "newman" / "node_modules" / ".bin" / "newman"
# Floors, so that a collection that lost its requests or its tests fails here.
MIN_REQUESTS = 60
MIN_ASSERTIONS = 240
NEWMAN_TIMEOUT_S = 300


def _newman() -> Path:
    newman = Path(os.environ.get("NEWMAN_BIN") or DEFAULT_NEWMAN)
    assert newman.is_file() and os.access(newman, os.X_OK), (
        f"newman is missing at {newman}; install it with `scripts/bootstrap.sh --dev`"
    )
    return newman


def _requests_in(items: list[dict]) -> list[dict]:
    """Every request of the collection, folders flattened."""
    found = []
    for item in items:
        found.extend(_requests_in(item["item"]) if "item" in item else [item])
    return found


def test_collection_is_well_formed():
    collection = json.loads(COLLECTION.read_text())
    assert collection["info"]["schema"].endswith("/collection/v2.1.0/collection.json")
    assert {"key": "baseUrl", "value": "http://127.0.0.1:3000", "type": "string"} in collection["variable"]
    assert [folder["name"] for folder in collection["item"]] == ["Happy path", "Errors"]
    requests = _requests_in(collection["item"])
    assert len(requests) >= MIN_REQUESTS
    for request in requests:
        scripts = ["\n".join(e["script"]["exec"]) for e in request.get("event", []) if e["listen"] == "test"]
        assert any("pm.test(" in script for script in scripts), f"no pm.test in {request['name']!r}"
        assert request["request"]["url"]["raw"].startswith("{{baseUrl}}/api/"), request["name"]


def test_postman_collection_passes(base_url, tmp_path):
    newman = _newman()
    report = tmp_path / "newman-report.json"
    result = subprocess.run(
        [
            str(newman), "run", str(COLLECTION),
            "--env-var", f"baseUrl={base_url}",
            "--reporters", "cli,json",
            "--reporter-json-export", str(report),
            "--color", "off",
            "--disable-unicode",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=NEWMAN_TIMEOUT_S,
    )
    output = result.stdout[-20000:] + result.stderr[-4000:]
    assert result.returncode == 0, f"newman exited with {result.returncode}:\n{output}"

    run = json.loads(report.read_text())["run"]
    stats = run["stats"]
    assert run["failures"] == [], output
    for kind in ("requests", "assertions", "testScripts", "prerequestScripts"):
        assert stats[kind]["failed"] == 0, f"{kind}: {stats[kind]}\n{output}"

    expected_requests = len(_requests_in(json.loads(COLLECTION.read_text())["item"]))
    assert stats["requests"]["total"] == expected_requests >= MIN_REQUESTS
    assert stats["assertions"]["total"] >= MIN_ASSERTIONS, stats["assertions"]
    # Every request was answered and checked by assertions of its own, not only the
    # collection-wide ones.
    for execution in run["executions"]:
        name = execution["item"]["name"]
        assert "response" in execution, f"no response for {name!r}"
        own = [a for a in execution.get("assertions", []) if not a["assertion"].startswith("[all]")]
        assert own, f"no assertion of its own ran for {name!r}"
        assert all("error" not in a and not a.get("skipped") for a in execution["assertions"]), name
