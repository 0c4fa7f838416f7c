"""The client's address and scheme, read once per request from the socket and trusted proxies.

:class:`ProxyHeadersMiddleware` runs first for every HTTP request and websocket (the API,
the pages, ``/_event``, the admin). When the socket's peer is in ``TRUSTED_PROXIES`` it
replaces ``scope["client"]`` with the client the proxies report and ``scope["scheme"]``
with the scheme the client used; everyone after it reads those, through
:func:`request_client_ip` (HTTP and websocket requests) or :func:`client_address` (an
address already taken from a scope, as Reflex's ``router.session.client_ip``).

* ``X-Forwarded-For``: every header line, in order, joined with commas (RFC 9110 §5.3:
  repeated lines are one list), and the rightmost address that is not itself a trusted
  proxy is the client (everything left of it was written by the client, or by proxies we
  do not know). That rule is Granian's ``granian.utils.proxies`` (uvicorn's middleware
  ported), which this wraps (``infra/framework/granian.py``); uvicorn's own reads only the
  last header line.
* Around it: a hop that is not an IP address never becomes the client (the peer stays),
  and a dual-stack socket's ``::ffff:a.b.c.d`` is the IPv4 address it stands for.
* ``X-Forwarded-Proto``: the rightmost value of all its lines (the one the nearest proxy
  wrote; Granian takes the first line, which may be the client's own), applied from a
  trusted peer whether or not ``X-Forwarded-For`` came too.
"""

from __future__ import annotations

import ipaddress
from functools import cache, lru_cache

from starlette.types import ASGIApp, Receive, Scope, Send

from referral_app.domain.clients import UNKNOWN, client_key  # noqa: F401 (the limits' unit, used by sockets and logs)
from referral_app.domain.clients import parse_address as _parse
from referral_app.infra.framework.granian import proxy_headers_resolver
from referral_app.settings import settings

_SCHEMES = {"http", "https"}


@cache
def _trusted_networks(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


@lru_cache(maxsize=4096)  # twice per request (the proxy-header middleware, the access log)
def client_address(host: str | None) -> str:
    """An address in its one text form (``2001:db8::7``, IPv4 for ``::ffff:a.b.c.d``), or ``unknown``."""
    address = _parse(host or "")
    return UNKNOWN if address is None else str(address)


def request_client_ip(scope: Scope) -> str:
    """The client of an HTTP request or websocket, as :class:`ProxyHeadersMiddleware` resolved it."""
    client = scope.get("client")
    return client_address(client[0] if client else None)


@cache
def _wrapped(proxies: tuple[str, ...]):
    """Granian's X-Forwarded-For rule for these proxies: ``scope -> scope``."""
    return proxy_headers_resolver([str(network) for network in _trusted_networks(proxies)])


def _trusted(address: str, proxies: tuple[str, ...]) -> bool:
    parsed = _parse(address)
    return parsed is not None and any(parsed in network for network in _trusted_networks(proxies))


def _forwarded_proto(headers) -> str | None:
    values = [
        part.strip().lower()
        for name, value in headers
        if name.lower() == b"x-forwarded-proto"
        for part in value.decode("latin-1").split(",")
    ]
    return values[-1] if values and values[-1] in _SCHEMES else None


def resolve(scope: Scope, trusted_proxies: tuple[str, ...] | None = None) -> Scope:
    """A copy of ``scope`` with the client and scheme that trusted proxies report."""
    proxies = settings.trusted_proxies if trusted_proxies is None else trusted_proxies
    client = scope.get("client")
    peer = client_address(client[0] if client else None)
    scope = {**scope, "client": (peer, client[1] if client else 0)}
    if peer == UNKNOWN or not _trusted(peer, proxies):
        return scope
    # Granian's rule sees X-Forwarded-For only; the scheme is decided below.
    headers = [(name, value) for name, value in scope.get("headers", ()) if name.lower() != b"x-forwarded-proto"]
    resolved = _wrapped(proxies)({**scope, "headers": headers})
    host = resolved["client"][0]
    if _parse(host) is not None:
        scope["client"] = (client_address(host), 0 if host != peer else scope["client"][1])
    proto = _forwarded_proto(scope.get("headers", ()))
    if proto is not None:
        scope["scheme"] = proto.replace("http", "ws") if scope["type"] == "websocket" else proto
    return scope


class ProxyHeadersMiddleware:
    """Pure ASGI, outermost of the app's own middleware (``infra/stack.py``): resolves the
    client and scheme once, for everything behind it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = resolve(scope)
        await self.app(scope, receive, send)


def client_ip(peer: str | None, forwarded_for: str | None, trusted_proxies: tuple[str, ...] | None = None) -> str:
    """The client behind ``peer`` given the ``X-Forwarded-For`` value, by the middleware's rule
    (for code that has an address and a header but no ASGI scope)."""
    headers = [(b"x-forwarded-for", forwarded_for.encode("latin-1", "replace"))] if forwarded_for else []
    scope = {"type": "http", "client": (peer, 0) if peer else None, "headers": headers}
    return request_client_ip(resolve(scope, trusted_proxies))


# A malformed TRUSTED_PROXIES stops the app at start, not at the first request.
_trusted_networks(settings.trusted_proxies)
