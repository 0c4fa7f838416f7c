"""Guards of reflex_frontend.py (referral_app/infra/framework/): the built frontend talks to its
own origin (infra/frontend.py), and the frontend is built and served through Reflex's internals
in that module only.

The change is made to the ``getBackendURL`` of the Reflex that is installed, and the
patched function is run in Node.js with pages at several origins. A Reflex upgrade that
changes the function fails here (and stops the build) rather than shipping a frontend
whose websocket goes to the port it was built with.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from referral_app.infra import frontend
from referral_app.infra.framework import reflex_frontend
from tests.conftest import ROOT


def installed_state_js() -> str:
    import reflex_base

    path = Path(reflex_base.__file__).parent / ".templates" / "web" / reflex_frontend.STATE_JS
    assert path.is_file(), f"{path}: Reflex keeps its state.js elsewhere now; see infra/framework/reflex_frontend.py"
    return path.read_text()


def get_backend_url_source(state_js: str) -> str:
    """The ``SAME_DOMAIN_HOSTNAMES`` constant and the ``getBackendURL`` function, as plain JS."""
    hostnames = re.search(r"^const SAME_DOMAIN_HOSTNAMES = .*;$", state_js, re.M)
    function = re.search(r"^export const getBackendURL = \(url_str\) => \{\n.*?^\};$", state_js, re.M | re.S)
    assert hostnames and function, "getBackendURL or SAME_DOMAIN_HOSTNAMES is gone from state.js"
    return hostnames.group(0) + "\n" + function.group(0).replace("export const", "const")


def resolve_in_node(state_js: str, cases: list[tuple[str, str]]) -> list[str]:
    """Run ``getBackendURL(url)`` with ``window.location`` = page, for each (page, url)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing (it comes with npm, which scripts/bootstrap.sh needs)")
    script = (
        get_backend_url_source(state_js)
        + "\nconst out = [];\nfor (const [page, url] of "
        + json.dumps(cases)
        + ") {\n  globalThis.window = { location: new URL(page) };\n  out.push(getBackendURL(url).href);\n}\n"
        "console.log(JSON.stringify(out));\n"
    )
    result = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# What Reflex builds by default (api_url http://localhost:8000) and what the page opens.
CASES = [
    ("http://127.0.0.1:3917/profile", "ws://localhost:8000/_event", "ws://127.0.0.1:3917/_event"),
    ("http://referral.example.test:8080/", "ws://localhost:8000/_event", "ws://referral.example.test:8080/_event"),
    ("http://referral.example.test/", "http://localhost:8000/_upload", "http://referral.example.test/_upload"),
    ("https://referral.example.test/", "ws://localhost:8000/_event", "wss://referral.example.test/_event"),
    ("https://referral.example.test:8443/x", "ws://localhost:8000/_event", "wss://referral.example.test:8443/_event"),
    ("http://[::1]:3000/", "http://localhost:8000/ping", "http://[::1]:3000/ping"),
    # An api_url with a real host name (a backend elsewhere) is left as it is.
    ("http://127.0.0.1:3000/", "wss://api.example.test/_event", "wss://api.example.test/_event"),
]


def test_patched_frontend_talks_to_the_pages_own_origin():
    patched = reflex_frontend.same_origin_state_js(installed_state_js())
    assert resolve_in_node(patched, [(page, url) for page, url, _ in CASES]) == [want for _, _, want in CASES]


def test_unpatched_reflex_keeps_the_built_port():
    """What the change is for: without it the page on port 3917 calls port 8000."""
    stock = installed_state_js()
    got = resolve_in_node(stock, [(CASES[0][0], CASES[0][1]), (CASES[4][0], CASES[4][1])])
    assert got == ["ws://127.0.0.1:8000/_event", "wss://referral.example.test/_event"]


def test_patch_is_idempotent_and_refuses_an_unknown_state_js():
    patched = reflex_frontend.same_origin_state_js(installed_state_js())
    assert reflex_frontend.same_origin_state_js(patched) == patched
    assert patched.count(reflex_frontend.MARKER) == 2
    changed = installed_state_js().replace("endpoint.hostname = frontend_hostname;", "endpoint.hostname = h;")
    with pytest.raises(reflex_frontend.FrontendPatchError, match="Reflex changed it"):
        reflex_frontend.same_origin_state_js(changed)


def test_the_plugin_is_configured_and_registers_the_change():
    from rxconfig import config

    plugins = [plugin for plugin in config.plugins if isinstance(plugin, frontend.SameOriginPlugin)]
    assert len(plugins) == 1
    tasks = []
    plugins[0].pre_compile(add_modify_task=lambda path, fn: tasks.append((path, fn)), add_save_task=None)
    assert tasks == [(reflex_frontend.STATE_JS, reflex_frontend.same_origin_state_js)]


def test_only_one_module_leans_on_reflex_build_and_serve_internals():
    """How the frontend is built and served (Reflex's environment, config and server
    internals, its state.js) is known in referral_app/infra/framework/ only."""
    internals = re.compile(
        r"^\s*(from|import) (reflex\.utils\.(exec|build|export)|reflex_base\.(environment|config|constants))\b"
        r"|state\.js|run_backend_prod|_set_persistent",
        re.M,
    )
    offenders = []
    for path in [*ROOT.glob("referral_app/**/*.py"), *ROOT.glob("scripts/*"), ROOT / "rxconfig.py", ROOT / "Dockerfile"]:
        if path.is_file() and internals.search(path.read_text()):
            offenders.append(str(path.relative_to(ROOT)))
    # (reflex_state.py reads one Reflex constant too: how client-storage values are named.)
    assert sorted(offenders) == [
        "referral_app/infra/framework/reflex_frontend.py",
        "referral_app/infra/framework/reflex_state.py",
    ], offenders


def test_scripts_in_the_page_reach_the_backend_as_the_websocket_does(monkeypatch):
    """rx.call_script code that calls the API itself (the sign-in's cookie exchange) uses the
    same base as the patched getBackendURL: the page's origin, or a real api_url host."""
    stock = installed_state_js()
    listed = re.search(r"^const SAME_DOMAIN_HOSTNAMES = (\[.*\]);$", stock, re.M).group(1)
    assert tuple(json.loads(listed)) == reflex_frontend.SAME_DOMAIN_HOSTNAMES

    from reflex_base.config import get_config

    config = get_config()
    assert frontend.backend_base_url_js() == "new URL(window.location.origin)"  # the default api_url
    monkeypatch.setattr(config, "api_url", "http://[::]:8000")
    assert frontend.backend_base_url_js() == "new URL(window.location.origin)"
    monkeypatch.setattr(config, "api_url", "https://api.example.test")
    assert frontend.backend_base_url_js() == 'new URL("https://api.example.test")'

    from referral_app.state.base import browser_session_script

    monkeypatch.setattr(config, "api_url", "http://localhost:8000")
    assert "new URL(window.location.origin)" in browser_session_script("POST", {"claim": "x"}, "/profile")


def test_reflex_still_serves_a_prebuilt_frontend_the_way_start_prod_server_expects():
    """``start_prod_server`` (``scripts/serve_prebuilt.py``) does what ``reflex run --env prod
    --single-port`` does after its build: these names and arguments must still exist."""
    import inspect

    from reflex.utils import exec as reflex_exec
    from reflex.utils import prerequisites
    from reflex_base import constants
    from reflex_base.config import Config
    from reflex_base.environment import environment

    assert list(inspect.signature(reflex_exec.run_backend_prod).parameters)[:3] == ["host", "port", "loglevel"]
    assert "mount_frontend_compiled_app" in inspect.signature(reflex_exec.run_backend_prod).parameters
    assert callable(Config._set_persistent) and callable(prerequisites.get_web_dir)
    for flag in ("REFLEX_COMPILE_CONTEXT", "REFLEX_ENV_MODE", "REFLEX_SKIP_COMPILE"):
        assert hasattr(environment, flag), flag
    assert constants.Dirs.STATIC == "build/client"
    assert reflex_frontend.static_dir() == prerequisites.get_web_dir() / "build" / "client"
