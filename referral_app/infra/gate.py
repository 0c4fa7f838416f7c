"""The checks made on a request's head before anything reads it, in one layer (:class:`RequestGate`).

In this order, each in its own module:

1. the ``Host`` must be one the app answers for (``infra/hosts.py``): else 400, for HTTP
   requests and websocket handshakes alike; health and metrics paths answer any host;
2. a ``Cookie`` header over ``MAX_COOKIE_HEADER_BYTES`` gets 431 and a page that clears the
   jar (``infra/cookie_limit.py``);
3. a tossed copy of one of the app's cookies is deleted with the answer, whatever the answer
   (``infra/cookies.py``);
4. an internal path (``/metrics``), however spelt, is a 404 outside
   ``METRICS_ALLOWED_NETWORKS`` (``infra/internal_paths.py``).

They were four layers; a request that passes them all (nearly every one) now costs one
pass over its headers and no wrapper around ``send``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_app.infra import cookies, hosts
from referral_app.infra.client_ip import request_client_ip
from referral_app.infra.cookie_limit import too_large
from referral_app.infra.internal_paths import is_internal
from referral_app.infra.metrics import may_read_metrics
from referral_app.infra.responses import error_response
from referral_app.settings import settings


class RequestGate:
    """Pure ASGI, inside the proxy-header middleware (which resolves the client and scheme)
    and the access log (which logs the refusals too): the checks of the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            if scope["path"] in hosts.ANY_HOST_PATHS or hosts.host_allowed(hosts.host_header(scope)):
                await self.app(scope, receive, send)
            else:
                await hosts.refuse_socket(scope, send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        host: bytes | None = None
        cookie_lines: list[bytes] = []
        for name, value in scope["headers"]:
            lower = name.lower()
            if lower == b"host":
                if host is None:
                    host = value
            elif lower == b"cookie":
                cookie_lines.append(value)
        host_text = None if host is None else host.decode("latin-1")
        if scope["path"] not in hosts.ANY_HOST_PATHS and not hosts.host_allowed(host_text):
            await hosts.refusal(scope)(scope, receive, send)
            return
        if not cookie_lines:
            names = []
        else:
            if sum(map(len, cookie_lines)) > settings.max_cookie_header_bytes:
                await too_large(scope, send)
                return
            secure = cookies.is_secure(scope)
            names = cookies.tossed_cookies("; ".join(line.decode("latin-1") for line in cookie_lines), secure)
        if names:
            removals = [
                (b"set-cookie", value)
                for value in cookies.deletions(names, hosts.host_name(host_text) or "", scope["path"], secure)
            ]

            server_send = send

            async def send_with_removals(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), *removals]}
                await server_send(message)

            send = send_with_removals
        if is_internal(scope["path"]) and not may_read_metrics(request_client_ip(scope)):
            await error_response(404, "request.not_found")(scope, receive, send)
            return
        await self.app(scope, receive, send)
