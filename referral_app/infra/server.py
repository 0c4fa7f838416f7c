"""How the server treats slow and idle clients and dead workers.

Reflex starts Granian without any of these (``reflex.utils.exec``), so
:func:`use_http_timeouts` gives Granian's ``Server`` class our defaults (through
``infra/framework/granian.py``); ``rxconfig.py``
calls it before Reflex (or ``scripts/serve_prebuilt.py``) starts the server.

* Headers, idle keep-alive and silent connections: Granian's HTTP/1 ``header_read_timeout``
  (hyper's), which runs from the moment a connection is ready for a request, so it closes a
  connection that trickles its headers, one that sits idle between requests, and one that
  never sends a byte. The last only in HTTP/1 mode: in Granian's default ``auto`` mode,
  hyper-util first reads the connection's opening bytes to choose HTTP/1 or HTTP/2 and that
  read has no timeout at all (Granian 2.8.9, ``workers.rs``: ``conn_handle_ha_impl``), so a
  connection that sends nothing holds a file descriptor for ever. The server therefore
  speaks HTTP/1.1 only (with websockets); HTTP/2 is the proxy's business (nginx speaks
  HTTP/1.1 to its upstreams). ``HTTP_HEADER_TIMEOUT_SECONDS``.
* Dead workers: Granian's ``respawn_failed_workers``: a worker that exits unexpectedly (a
  crash, ``kill -9``, the OOM killer) is replaced and the others keep serving; without it
  Granian shuts the whole instance down. Granian gives up (and exits) only on a crash loop,
  a worker dying again within 5.5 s of its replacement. At a stop, a worker still busy after
  ``WORKER_STOP_TIMEOUT_SECONDS`` is killed (``workers_kill_timeout``).
* Bodies: Granian has no such timeout, so the stack's body watch (``infra/asgi.py``,
  :class:`~referral_app.infra.asgi.BodyWatch`) gives a request ``HTTP_BODY_TIMEOUT_SECONDS``
  from its headers to the end of its body, then answers 408 and closes the connection.
"""

from __future__ import annotations

from referral_app.infra.framework.granian import default_server_arguments
from referral_app.settings import settings


def granian_http1_settings():
    """Granian's HTTP/1 settings with the header (and idle keep-alive) timeout."""
    from granian.http import HTTP1Settings

    return HTTP1Settings(header_read_timeout=int(settings.http_header_timeout_seconds * 1000))


def granian_defaults() -> dict:
    """The keyword arguments our Granian servers start with (see the module docstring)."""
    from granian.constants import HTTPModes

    return {
        "http": HTTPModes.http1,
        "http1_settings": granian_http1_settings(),
        "respawn_failed_workers": True,
        "workers_kill_timeout": settings.worker_stop_timeout_seconds,
    }


def use_http_timeouts() -> None:
    """Make every Granian server started in this process default to :func:`granian_defaults`
    (HTTP/1 with the header timeout, dead workers replaced); arguments its caller gives win.

    How is ``infra/framework/granian.py``'s business; ``tests/framework/test_granian.py``
    fails if Reflex stops starting Granian that way or Granian drops one of these arguments.
    """
    default_server_arguments(granian_defaults)
