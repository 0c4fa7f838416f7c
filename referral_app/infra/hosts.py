"""Which host names the app answers for (``ALLOWED_HOSTS``), and warnings about an unsafe set-up.

Every absolute URL the app builds from a request (the admin's redirects and form actions,
Starlette's ``url_for``, the share link and its QR code when ``PUBLIC_URL`` is unset) takes
its host from the request's ``Host`` header, which the client writes. So a request whose
host the operator did not configure is refused before any app code runs (the stack's
first check, ``infra/gate.py``): 400, JSON ``request.host_not_allowed`` under ``/api``, a plain page
elsewhere, and the websocket handshake (``/_event``) likewise.

The hosts answered (the port is not part of the match):

* ``ALLOWED_HOSTS`` when set: host names, IP addresses, ``*.example.com`` (any subdomain
  of example.com, not example.com itself), or ``*`` (any host: only behind a proxy that
  checks hosts itself);
* else ``PUBLIC_URL``'s host;
* else, in demo mode (``make run``), any host, as before: a local run works at
  http://127.0.0.1:3000 and under any name that reaches it;
* else (production with neither set) only the loopback names ``localhost``, ``127.0.0.1``
  and ``::1``: nothing public can be answered under a name nobody configured, yet the image's
  own health check and a trial on the machine itself still work. A warning at start names
  the two settings. (Refusing to start would break a first ``docker compose up`` for no
  gain: with loopback only, no link can carry a foreign host either.)

Loopback names are not added to a configured list: ``Host: localhost`` can be sent from
anywhere. Health and metrics paths (:data:`ANY_HOST_PATHS`) answer any host: Kubernetes
probes and Prometheus name the pod by its IP address, and those answers carry no URL and
change nothing (``/metrics`` keeps its own network check).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from urllib.parse import urlsplit

from starlette.responses import PlainTextResponse, Response
from starlette.types import Scope, Send

from referral_app.i18n import translate
from referral_app.infra.responses import SECURITY_HEADERS, error_response
from referral_app.settings import is_loopback_host, settings

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
# Probes and scrapes address a pod by its IP; these answers carry no URL and change nothing.
ANY_HOST_PATHS = frozenset({"/ping", "/api/health", "/api/health/", "/api/v1/health", "/api/v1/health/", "/metrics"})
REFUSED_CODE = "request.host_not_allowed"


def host_name(value: str | None) -> str | None:
    """The host name of a ``Host`` header (RFC 9110 §7.2: ``host[:port]``), lower-case, without
    the port and an IPv6 address's brackets; None for anything that is not a host."""
    if not value or any(char in value for char in "/?#@\\"):
        # urlsplit would pass ``host?`` and ``host#`` (an empty query or fragment), which
        # Starlette then takes for an invalid Host and answers with the server's own address.
        return None
    try:
        parts = urlsplit("//" + value.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    host = parts.hostname
    if not host or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    if not host.isascii() or not all(char.isalnum() or char in ".-:_" for char in host):
        return None
    return host.rstrip(".")


@lru_cache(maxsize=8)
def _patterns(allowed_hosts: tuple[str, ...], public_url: str, demo_mode: bool) -> tuple[str, ...] | None:
    if allowed_hosts:
        return None if "*" in allowed_hosts else allowed_hosts
    if public_url:
        return (urlsplit(public_url).hostname or "",)
    return None if demo_mode else LOOPBACK_HOSTS


def allowed_hosts() -> tuple[str, ...] | None:
    """The host patterns answered now (see the module docstring); None: any host."""
    return _patterns(settings.allowed_hosts, settings.public_url, settings.demo_mode)


def host_allowed(host: str | None) -> bool:
    """Whether a request for ``host`` (a ``Host`` header's value, port allowed) is answered."""
    patterns = allowed_hosts()
    if patterns is None:
        return True
    name = host_name(host)
    if name is None:
        return False
    for pattern in patterns:
        if pattern == name or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return True
    return False


def link_base(*candidates: str | None) -> str:
    """The base of an absolute link the app hands out (the share link, its QR code):
    ``PUBLIC_URL``, else the first candidate origin (``scheme://host[:port]``) whose host is
    answered (:func:`host_allowed`) or that ``ALLOWED_ORIGINS`` lists; "" when none is."""
    from referral_app.settings import normalize_origin

    if settings.public_url:
        return settings.public_url
    for candidate in candidates:
        origin = normalize_origin(candidate) if candidate else None
        if origin is not None and (origin in settings.allowed_origins or host_allowed(urlsplit(origin).netloc)):
            return origin
    return ""


def host_header(scope: Scope) -> str | None:
    """The request's (first) ``Host`` header, or None."""
    for key, value in scope.get("headers", ()):
        if key == b"host" or key.lower() == b"host":
            return value.decode("latin-1")
    return None


def refusal(scope: Scope) -> Response:
    """The answer to an HTTP request for a host not answered: 400 ``request.host_not_allowed``,
    JSON under ``/api``, plain text elsewhere, with the security headers."""
    headers = {"Cache-Control": "no-store", "Connection": "close"}
    if scope["path"].startswith("/api/"):
        response = error_response(400, REFUSED_CODE, headers=headers)
    else:
        response = PlainTextResponse(translate(REFUSED_CODE), 400, headers=headers)
    response.raw_headers.extend(SECURITY_HEADERS)
    return response


async def refuse_socket(scope: Scope, send: Send) -> None:
    """A 400 where the server lets the app answer a handshake (the ASGI websocket denial
    response extension); else a close before accepting, which the server answers 403."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": 400,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "websocket.http.response.body", "body": b"", "more_body": False})
        return
    await send({"type": "websocket.close", "code": 1008})


def startup_warnings() -> list[str]:
    """What the app warns about at start (each one WARNING line, :func:`warn_at_start`):

    * ``PUBLIC_URL`` is plain ``http://`` on a host that is not loopback: over HTTP the
      session cookies cannot carry ``__Host-``/``Secure``, so a sibling subdomain can toss
      cookies at the app and anyone on the network can read them (infra/cookies.py);
    * production with neither ``PUBLIC_URL`` nor ``ALLOWED_HOSTS``: only loopback is answered.
    """
    warnings = []
    public = urlsplit(settings.public_url) if settings.public_url else None
    plain_http = public is not None and public.scheme.lower() == "http"
    if plain_http and not is_loopback_host(public.hostname or "", subdomains=True):
        warnings.append(
            f"PUBLIC_URL={settings.public_url} is plain HTTP: session cookies cannot be Secure or __Host-, "
            "so anyone on the network can read them and a sibling subdomain can set its own; "
            "serve the app over HTTPS (README, Security)"
        )
    if not settings.demo_mode and not settings.public_url and not settings.allowed_hosts:
        warnings.append(
            "neither PUBLIC_URL nor ALLOWED_HOSTS is set: only requests for localhost, 127.0.0.1 and ::1 are "
            "answered (400 for any other Host); set PUBLIC_URL to the address browsers open"
        )
    return warnings


async def warn_at_start() -> None:
    """A lifespan task (each worker, once at start): log :func:`startup_warnings` at WARNING."""
    for warning in startup_warnings():
        logger.warning(warning)
