"""The one place that leans on Reflex internals: the built frontend and its server.

Reflex 0.10.1 writes the backend's address into the built JavaScript (``.web/env.json``,
bundled as ``assets/reflex-env-<hash>.js``): ``api_url`` (default
``http://localhost:<backend_port>``) with ``/_event`` (websocket), ``/_upload`` and
``/ping``. At run time ``getBackendURL`` in ``.web/utils/state.js`` swaps a ``localhost``
(or ``0.0.0.0``/``::``) host name for the page's host name, and over https also drops the
port, but over http it keeps the port the build was made with. So a build served on
another port (two instances from one checkout, a proxy on port 8080, a container published
on a port other than 3000) opens its websocket to the wrong server. Reflex has no setting
for "the page's own origin" (``api_url`` must be an absolute URL, and ``REFLEX_API_URL``
is read at build time).

:class:`SameOriginPlugin` is the one change: a Reflex plugin (the public ``rx.plugins``
API, the same hook Reflex's own ``EmbedPlugin`` uses) that, at compile time, makes
``getBackendURL`` take the page's port as well as its host name, also over https.
An ``api_url`` with a real host name is left alone, so a backend on another origin
still works. If a Reflex upgrade changes the function, the build stops with :class:`FrontendPatchError` (and
``tests/deploy/test_frontend.py`` fails) instead of shipping a frontend that talks to the
wrong place.

:func:`serve_prebuilt` serves a frontend built beforehand (``reflex export --frontend-only
--no-zip``) with the backend on one port; ``scripts/serve_prebuilt.py`` (the container) and
``scripts/run.sh`` (``make run``) both start the app through it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import reflex as rx

# .web/utils/state.js, relative to the web directory (as add_modify_task expects).
STATE_JS = "utils/state.js"
MARKER = "referral_app SameOriginPlugin"

# (what Reflex 0.10.1 writes, what we write instead); each must occur exactly once.
_REPLACEMENTS = (
    (
        "    const frontend_hostname = window.location.hostname;\n"
        "    endpoint.hostname = frontend_hostname;\n",
        f"    // {MARKER}: the page's own host name and port, so one build serves any origin.\n"
        "    // (Not endpoint.host = location.host: without a port that keeps the built one.)\n"
        "    endpoint.hostname = window.location.hostname;\n"
        "    endpoint.port = window.location.port;\n",
    ),
    (
        '      endpoint.port = ""; // Assume websocket is on https port via load balancer.\n',
        f"      endpoint.port = window.location.port; // {MARKER}: the page's own port.\n",
    ),
)


class FrontendPatchError(RuntimeError):
    """Reflex's ``getBackendURL`` no longer looks as this module expects (a Reflex upgrade)."""


def same_origin_state_js(source: str) -> str:
    """Return ``utils/state.js`` with ``getBackendURL`` aimed at the page's own origin.

    Idempotent (a second compile sees the marker and changes nothing).

    Raises:
        FrontendPatchError: when the text to replace is missing or ambiguous.
    """
    if MARKER in source:
        return source
    for old, new in _REPLACEMENTS:
        if source.count(old) != 1:
            raise FrontendPatchError(
                f"{STATE_JS}: expected exactly one {old.strip()!r} in getBackendURL; "
                "Reflex changed it. See referral_app/infra/frontend.py."
            )
        source = source.replace(old, new)
    return source


# The host names that getBackendURL replaces with the page's (Reflex 0.10.1, state.js).
SAME_DOMAIN_HOSTNAMES = ("localhost", "0.0.0.0", "::", "0:0:0:0:0:0:0:0")


def backend_base_url_js() -> str:
    """A JavaScript expression for the backend's base URL as the built page reaches it:
    the page's own origin, unless ``api_url`` names a real host (a backend elsewhere).
    For scripts run in the page (``rx.call_script``) that call the backend themselves."""
    from urllib.parse import urlsplit

    api_url = rx.config.get_config().api_url
    host = (urlsplit(api_url).hostname or "").strip("[]")
    if host in SAME_DOMAIN_HOSTNAMES:
        return "new URL(window.location.origin)"
    return f"new URL({json.dumps(api_url)})"


def client_storage_key(state_cls: type[rx.State], name: str) -> str:
    """How Reflex 0.10.1 names a client-storage var (``rx.LocalStorage``) among the values a
    page sends with ``hydrate_and_load``: ``"<state full name>.<var>_rx_state_"``
    (``reflex.compiler.utils._compile_client_storage_recursive``).
    ``tests/state/test_session_binding.py`` fails if Reflex names it otherwise."""
    from reflex_base.constants.state import FIELD_MARKER

    return f"{state_cls.get_full_name()}.{name}{FIELD_MARKER}"


def hydrate_storage_value(payload: object, state_cls: type[rx.State], name: str) -> str | None:
    """The value of a client-storage var in a ``hydrate_and_load`` event's payload (``{"vars":
    {key: value}}``): "" when the page sent none (so a check on it fails closed), None when the
    payload carries no storage values at all (a plain ``hydrate``)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("vars"), dict):
        return None
    value = payload["vars"].get(client_storage_key(state_cls, name), "")
    return value if isinstance(value, str) else ""


class SameOriginPlugin(rx.plugins.Plugin):
    """Reflex plugin: the built frontend talks to the backend at the page's own origin."""

    def pre_compile(self, **context):
        context["add_modify_task"](STATE_JS, same_origin_state_js)


def serve_prebuilt(host: str, port: int, root: Path | None = None) -> int:
    """Serve the frontend in ``<web dir>/build/client`` and the backend on ``host:port``.

    What ``reflex run --env prod --single-port`` does after its build step (Reflex 0.10.1,
    ``reflex.reflex._run_prod``): Granian with ``GRANIAN_WORKERS`` workers, the compiled
    frontend mounted next to ``/_event``, ``/api`` and ``/admin``. The web directory is
    ``.web`` or ``REFLEX_WEB_WORKDIR``; it is only read (the backend writes
    ``backend/stateful_pages.json`` there). Returns the exit status: 0 after a graceful
    stop (SIGTERM or SIGINT), 2 when there is no ``rxconfig.py`` or no build.
    """
    root = root or Path.cwd()
    if not (root / "rxconfig.py").is_file():
        print(f"serve_prebuilt: no rxconfig.py in {root}", file=sys.stderr)
        return 2

    os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    from reflex_base import constants
    from reflex_base.config import get_config
    from reflex_base.environment import environment

    from reflex.utils import exec as reflex_exec
    from reflex.utils import prerequisites

    index = prerequisites.get_web_dir() / constants.Dirs.STATIC / "index.html"
    if not index.is_file():
        print(
            f"serve_prebuilt: {index} is missing; build the frontend first: "
            "reflex export --frontend-only --no-zip",
            file=sys.stderr,
        )
        return 2

    # What `reflex run --env prod --single-port` sets before it starts the server.
    environment.REFLEX_COMPILE_CONTEXT.set(constants.CompileContext.RUN)
    environment.REFLEX_ENV_MODE.set(constants.Env.PROD)
    environment.REFLEX_SKIP_COMPILE.set(True)
    config = get_config()
    config._set_persistent(frontend_port=port, backend_port=port, backend_host=host)

    reflex_exec.run_backend_prod(
        host,
        port,
        config.loglevel.subprocess_level(),
        mount_frontend_compiled_app=True,
    )
    return 0
