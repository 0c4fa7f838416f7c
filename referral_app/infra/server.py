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
* Bodies: Granian has no such timeout, so :class:`BodyTimeoutMiddleware` (pure ASGI) gives
  a request ``HTTP_BODY_TIMEOUT_SECONDS`` from its headers to the end of its body, then
  answers 408 and closes the connection.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class BodyTimeoutMiddleware:
    """A request's body must arrive within ``HTTP_BODY_TIMEOUT_SECONDS`` of its headers; else 408."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.http_body_timeout_seconds
        body_done = timed_out = started = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done or timed_out:  # the body is in: waiting for a disconnect is not timed
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                timed_out = True
                return {"type": "http.disconnect"}  # what the app would see if the client left
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, timed_receive, tracked_send)
        if timed_out and not started:
            from referral_app.api.errors import error_response

            response = error_response(408, "request.timeout", headers={"Connection": "close"})
            await response(scope, receive, send)
