"""One origin policy for everything that carries a user's or a staff member's credentials.

An origin is ``scheme://host[:port]`` (RFC 6454). A browser names the page that makes a
request in its ``Origin`` header; a page on another origin (a sibling subdomain, another
port of the same host: "same-site", so ``SameSite=Lax`` cookies still come along) must
not act with the visitor's cookies. Allowed are:

* the app's own origin: ``PUBLIC_URL``'s when that is set, else the request's own scheme,
  host and port (the scheme as a trusted proxy reports it, see ``infra/client_ip.py``);
* the origins listed in ``ALLOWED_ORIGINS``.

Nothing else. :func:`origin_allowed` is the policy; it is applied to the websocket handshake
(``/_event``), CORS (Reflex's ``cors_allowed_origins``, from :func:`cors_origins`), the
browser-session endpoint and every admin form.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import Scope

from referral_app.settings import normalize_origin, settings

_HTTP_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def public_origin() -> str | None:
    """The origin of ``PUBLIC_URL``, if it is set."""
    return normalize_origin(settings.public_url, allow_path=True) if settings.public_url else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def request_origin(scope: Scope) -> str | None:
    """The request's own origin: its scheme (``ws`` counts as ``http``), ``Host`` and port."""
    scheme = _HTTP_SCHEMES.get(str(scope.get("scheme", "http")).lower())
    host = _header(scope, b"host")
    if host is None and scope.get("server"):
        server_host, server_port = scope["server"]
        host = f"[{server_host}]:{server_port}" if ":" in str(server_host) else f"{server_host}:{server_port}"
    if scheme is None or not host:
        return None
    return normalize_origin(f"{scheme}://{host}")


def own_origin(scope: Scope) -> str | None:
    """``PUBLIC_URL``'s origin, else the request's own."""
    return public_origin() or request_origin(scope)


def origin_allowed(origin: str | None, scope: Scope) -> bool:
    """Whether a page on ``origin`` may act with the credentials this request carries."""
    normal = normalize_origin(origin) if origin else None
    if normal is None:
        return False
    return normal == own_origin(scope) or normal in settings.allowed_origins


def source_origin(scope: Scope) -> str | None:
    """The origin of the page that sent the request: ``Origin``, else ``Referer``'s origin.

    Browsers send ``Origin`` with every POST, PUT, PATCH and DELETE; ``Referer`` is the
    fallback for older ones (our ``Referrer-Policy`` keeps its origin on same-origin requests).
    """
    origin = _header(scope, b"origin")
    if origin is not None:
        return origin
    referer = _header(scope, b"referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def cors_origins(extra: Iterable[str] = ()) -> list[str]:
    """The origins that get CORS headers: ``ALLOWED_ORIGINS`` and ``PUBLIC_URL``'s.

    A page on the app's own origin needs none (its requests are same-origin), so when
    neither setting is given the list is empty and no other page may read a response.
    """
    origins = [*settings.allowed_origins, *extra]
    if (public := public_origin()) is not None:
        origins.append(public)
    return list(dict.fromkeys(origins))


def socket_origin_allowed(origin: str | None, environ: dict) -> bool:
    """The policy for the websocket handshake (``/_event``), in the form python-engineio calls:
    set as its ``cors_allowed_origins`` (``infra/framework/reflex_socket.py``), so a socket from
    another origin is refused before it connects. engineio asks only when the handshake has an
    ``Origin``; browsers always send one on a websocket."""
    return origin_allowed(origin, environ.get("asgi.scope", {}))
