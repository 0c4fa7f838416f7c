"""The built frontend and its server: the page talks to the backend at its own origin.

Reflex 0.10.1 writes the backend's address into the built JavaScript (``.web/env.json``,
bundled as ``assets/reflex-env-<hash>.js``): ``api_url`` (default
``http://localhost:<backend_port>``) with ``/_event`` (websocket), ``/_upload`` and
``/ping``. At run time ``getBackendURL`` (in Reflex's ``.web/utils/state`` script) swaps a ``localhost``
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
still works. The rewrite of Reflex's script reaches into Reflex's internals, so it
lives in ``infra/framework/reflex_frontend.py`` (the build stops there if Reflex changed the
function), as does the start of Reflex's production server for :func:`serve_prebuilt`.

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

from referral_app.infra.framework import reflex_frontend


def backend_base_url_js() -> str:
    """A JavaScript expression for the backend's base URL as the built page reaches it:
    the page's own origin, unless ``api_url`` names a real host (a backend elsewhere).
    For scripts run in the page (``rx.call_script``) that call the backend themselves."""
    from urllib.parse import urlsplit

    api_url = rx.config.get_config().api_url
    host = (urlsplit(api_url).hostname or "").strip("[]")
    if host in reflex_frontend.SAME_DOMAIN_HOSTNAMES:
        return "new URL(window.location.origin)"
    return f"new URL({json.dumps(api_url)})"


class SameOriginPlugin(rx.plugins.Plugin):
    """Reflex plugin: the built frontend talks to the backend at the page's own origin."""

    def pre_compile(self, **context):
        context["add_modify_task"](reflex_frontend.STATE_JS, reflex_frontend.same_origin_state_js)


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
    index = reflex_frontend.static_dir() / "index.html"
    if not index.is_file():
        print(
            f"serve_prebuilt: {index} is missing; build the frontend first: "
            "reflex export --frontend-only --no-zip",
            file=sys.stderr,
        )
        return 2
    reflex_frontend.start_prod_server(host, port)
    return 0
