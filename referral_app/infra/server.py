"""Slow clients: how long the server waits for a request's headers, for its body, and on an
idle keep-alive connection.

* Headers and idle keep-alive: Granian's HTTP/1 ``header_read_timeout`` (hyper's), which
  runs from the moment a connection is ready for a request, so it closes both a connection
  that trickles its headers and one that sits idle between requests. Reflex starts Granian
  without HTTP/1 settings (``reflex.utils.exec``), so :func:`use_http_timeouts` gives
  Granian's ``Server`` class ours as its default; ``rxconfig.py`` calls it, before Reflex
  (or ``scripts/serve_prebuilt.py``) starts the server. ``HTTP_HEADER_TIMEOUT_SECONDS``.
* Bodies: Granian has no such timeout, so :class:`BodyTimeoutMiddleware` (pure ASGI) gives
  a request ``HTTP_BODY_TIMEOUT_SECONDS`` from its headers to the end of its body, then
  answers 408 and closes the connection.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_app.settings import settings


def granian_http1_settings():
    """Granian's HTTP/1 settings with the header (and idle keep-alive) timeout."""
    from granian.http import HTTP1Settings

    return HTTP1Settings(header_read_timeout=int(settings.http_header_timeout_seconds * 1000))


def use_http_timeouts() -> None:
    """Make every Granian server started in this process default to :func:`granian_http1_settings`.

    Reflex imports ``granian.server.Server`` when it starts the server, so replacing the
    name with a subclass is enough; ``tests/test_http_timeouts.py`` fails if Reflex stops
    starting Granian that way.
    """
    import granian.server

    if getattr(granian.server.Server, "referral_app_timeouts", False):
        return

    class Server(granian.server.Server):
        referral_app_timeouts = True

        def __init__(self, *args, http1_settings=None, **kwargs) -> None:
            super().__init__(*args, http1_settings=http1_settings or granian_http1_settings(), **kwargs)

    Server.__name__ = Server.__qualname__ = granian.server.Server.__name__
    granian.server.Server = Server


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
