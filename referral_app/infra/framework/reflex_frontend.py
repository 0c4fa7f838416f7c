"""Reflex's built frontend and its production server (Reflex 0.10.1 internals).

Three reaches, for ``infra/frontend.py`` and ``infra/static_pages.py``:

* :func:`same_origin_state_js` rewrites ``getBackendURL`` in Reflex's ``.web/utils/state.js``
  (text that Reflex does not document) so that the built page takes the page's own port as
  well as its host name, also over https (``infra/frontend.py`` explains why, and applies it
  through the public ``rx.plugins`` API). If Reflex changes the function, the build stops
  with :class:`FrontendPatchError` instead of shipping a frontend that talks to the wrong
  place. :data:`SAME_DOMAIN_HOSTNAMES` are the host names that function replaces.
* :func:`static_dir`: where Reflex puts the compiled pages (``reflex.utils.prerequisites``).
* :func:`start_prod_server`: what ``reflex run --env prod --single-port`` does after its build
  step (``reflex.reflex._run_prod``): its environment flags, the persistent config
  (``Config._set_persistent``) and ``reflex.utils.exec.run_backend_prod`` with the compiled
  frontend mounted.

Guard tests: ``tests/framework/test_reflex_frontend.py`` (the patched function is run in Node.js).
"""

from __future__ import annotations

from pathlib import Path

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

# The host names that getBackendURL replaces with the page's (Reflex 0.10.1, state.js).
SAME_DOMAIN_HOSTNAMES = ("localhost", "0.0.0.0", "::", "0:0:0:0:0:0:0:0")


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
                "Reflex changed it. See referral_app/infra/framework/reflex_frontend.py."
            )
        source = source.replace(old, new)
    return source


def static_dir() -> Path:
    """The directory of the compiled pages: ``<web dir>/build/client``."""
    from reflex.utils import prerequisites
    from reflex_base import constants

    return prerequisites.get_web_dir() / constants.Dirs.STATIC


def start_prod_server(host: str, port: int) -> None:
    """Run Reflex's production backend (Granian, ``GRANIAN_WORKERS`` workers) on ``host:port``
    with the compiled frontend mounted beside it, without compiling; returns when it stops."""
    from reflex_base import constants
    from reflex_base.config import get_config
    from reflex_base.environment import environment

    from reflex.utils import exec as reflex_exec

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
