"""The app's cookies: the browser's session cookie, and the helpers the admin's cookies share.

Every cookie here is ``HttpOnly`` (scripts never see it), ``SameSite=Lax``, ``Path=/`` and
host-only (no ``Domain``). Over HTTPS it is also ``Secure`` and its name starts with
``__Host-`` (RFC 6265bis §4.1.3.2): a browser then accepts it only from this host, over
HTTPS, without ``Domain``, so a page on a sibling subdomain can neither set nor replace it
("cookie tossing"). Whether a request came over HTTPS is the scheme the client used
(``scope["scheme"]``, which ``infra/client_ip.py`` sets from a trusted proxy).

Over plain HTTP no name can stop a sibling (``evil.example.test`` beside
``app.example.test``, or another port of the same host) from setting a cookie of the same
name for ``Domain=example.test`` or for a longer ``Path``; the browser then sends both, and
never says which is whose (RFC 6265 §5.4). Two rules keep that harmless:

* **A session cookie counts only with its binding** (:func:`bound_session_token`). When the
  page trades its sign-in claim for the cookie (``api/browser_session.py``), the answer gives
  the page a binding value, an HMAC of the session token under ``SECRET_KEY``
  (:func:`session_binding`), which the page keeps in its origin's ``localStorage``. Reflex
  sends it back with every connection (``rx.LocalStorage``, ``state/base.py``), and the page
  state accepts only the cookie value whose binding it is. ``localStorage`` is per origin
  (scheme, host and port): no sibling can write it. So a cookie tossed at a signed-out
  visitor has no binding there and signs nobody in; beside the visitor's own it is passed
  over. The staff console does the same with a random binding its login page keeps in
  ``localStorage`` and sends with every form (``admin/auth.py``).
* **A tossed copy is removed at once** (the request gate, ``infra/gate.py``, with
  :func:`tossed_cookies` and :func:`deletions`): a request that carries
  one of the app's cookie names twice (or, over HTTPS, the plain name at all) gets
  ``Set-Cookie`` deletions for that name with ``Domain`` set to the request's host and to
  each of its parent domains, on every path prefix of its path, and host-only on every path
  prefix but ``/``. Those are
  all the places a copy that came with this request can live, except the app's own
  (host-only, ``Path=/``), which only this host can set and which is left alone. The next
  request carries ours alone: a duplicate costs at most one request, never a lock-out.

A sibling on another port of the same host name can still overwrite the host-only cookie
itself (cookies do not isolate ports): that signs the visitor out, never into someone else's
account. Over HTTPS none of this is needed; the README asks for HTTPS, and the app warns at
start when ``PUBLIC_URL`` is plain HTTP outside loopback (``infra/hosts.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from starlette.types import Scope

from referral_app.settings import settings

HOST_PREFIX = "__Host-"
SESSION_COOKIE = "referral_session"
# The page's localStorage key of its session binding (state/base.py, api/browser_session.py).
BINDING_STORAGE_KEY = "referral_session_binding"
# The admin's cookies (admin/auth.py); here so that the cleanup knows every name of ours.
ADMIN_COOKIE = "referral_admin"
LOGIN_COOKIE = "referral_admin_login"
APP_COOKIES = (SESSION_COOKIE, ADMIN_COOKIE, LOGIN_COOKIE)
_EXPIRED = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
# A request path deeper than this gets deletions for its first levels only (bounded answer).
_MAX_PATH_LEVELS = 8


def is_secure(scope: Scope) -> bool:
    """Whether the client used HTTPS (or WSS) for this request."""
    return scope.get("scheme") in ("https", "wss")


def cookie_name(name: str, secure: bool) -> str:
    """``referral_session`` over HTTP, ``__Host-referral_session`` over HTTPS."""
    return HOST_PREFIX + name if secure else name


def cookie_header(scope: Scope) -> str:
    """All ``Cookie`` header lines of a request, joined as RFC 6265 §5.4 sends them."""
    return "; ".join(value.decode("latin-1") for key, value in scope.get("headers", ()) if key.lower() == b"cookie")


def _parse(header: str | None) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for part in (header or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            values.setdefault(key.strip(), []).append(value.strip().strip('"'))
    return values


def cookie_values(header: str | None, name: str, secure: bool) -> list[str]:
    """Every non-empty value the ``Cookie`` header gives the app's cookie ``name``, in order.

    The ``__Host-`` name's values when it is present (only this host, over HTTPS, can have
    set it); otherwise, over HTTPS, none (a plain name could come from a sibling); over
    HTTP the plain name's (one of them may be a sibling's: see the module docstring).
    """
    values = _parse(header)
    found = values.get(HOST_PREFIX + name)
    if found is None and not secure:
        found = values.get(name)
    return [value for value in found or () if value]


def read_cookie(header: str | None, name: str, secure: bool) -> str | None:
    """The value of the app's cookie ``name`` (see :func:`cookie_values`), or None when
    there is none or more than one (which is whose is unknown)."""
    found = cookie_values(header, name, secure)
    return found[0] if len(found) == 1 else None


@lru_cache(maxsize=1)
def _binding_key(secret: str) -> bytes:
    return hashlib.sha256(b"referral-session-binding\0" + secret.encode()).digest()


def session_binding(token: str) -> str:
    """The binding of a browser session: base64url (no padding) of HMAC-SHA256 of its token
    under a key derived from ``SECRET_KEY``; 43 characters."""
    digest = hmac.new(_binding_key(settings.secret_key), token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def bound_session_token(header: str | None, secure: bool, binding: object) -> str | None:
    """The session token among the ``Cookie`` header's session cookies whose binding the page
    presented (``binding``, from its ``localStorage``), or None: no binding, or no cookie of
    this page's (a sibling's only)."""
    if not isinstance(binding, str) or not binding:
        return None
    for token in cookie_values(header, SESSION_COOKIE, secure):
        if hmac.compare_digest(session_binding(token).encode(), binding.encode("utf-8", "replace")):
            return token
    return None


def cookie_header_value(name: str, value: str, secure: bool, max_age: int | None) -> bytes:
    """A ``Set-Cookie`` value for one of the app's cookies (``max_age`` None: until the browser closes)."""
    parts = [f"{cookie_name(name, secure)}={value}", "HttpOnly", "Path=/", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("latin-1")


def expired_cookie_header_value(name: str, secure: bool) -> bytes:
    """A ``Set-Cookie`` value that removes one of the app's cookies."""
    return cookie_header_value(name, "", secure, max_age=0) + b"; Expires=Thu, 01 Jan 1970 00:00:00 GMT"


def session_token_from_header(header: str | None, secure: bool) -> str | None:
    """The browser's session token in a raw ``Cookie`` header (see :func:`read_cookie`), bound
    or not: for revoking it on sign-out, never for reading data."""
    return read_cookie(header, SESSION_COOKIE, secure)


def session_cookie(token: str, secure: bool) -> bytes:
    """The ``Set-Cookie`` value of the browser's session cookie (it lives as long as the session)."""
    return cookie_header_value(SESSION_COOKIE, token, secure, max_age=settings.session_ttl_days * 24 * 3600)


def expired_session_cookie(secure: bool) -> bytes:
    return expired_cookie_header_value(SESSION_COOKIE, secure)


# Removing tossed copies


def _cookie_domains(host: str) -> list[str]:
    """The ``Domain`` values a copy of a cookie sent to ``host`` can have: the host itself (a
    page on another port of it can set ``Domain=<host>``, which the browser keeps apart
    from a host-only cookie) and each parent: ``a.example.test`` → ``a.example.test``,
    ``example.test``, ``test``. None for an IP address (no ``Domain`` there)."""
    if not host or ":" in host or host.replace(".", "").isdigit():
        return []
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def _path_prefixes(path: str) -> list[str]:
    """The cookie paths that path-match ``path`` (RFC 6265 §5.1.4): ``/a/b`` → ``/``, ``/a``,
    ``/a/``, ``/a/b`` (a ``Path`` attribute is kept as written, so with and without ``/``)."""
    prefixes = ["/"]
    segments = [segment for segment in path.split("/") if segment][:_MAX_PATH_LEVELS]
    current = ""
    for segment in segments:
        current += "/" + segment
        prefixes += [current, current + "/"]
    return list(dict.fromkeys(prefixes))


def tossed_cookies(header: str | None, secure: bool) -> list[str]:
    """The app's cookie names that came as a sibling's copy: sent more than once, or, over
    HTTPS, under the plain name at all (the app sets only ``__Host-`` names there)."""
    if not header or "referral_" not in header:  # the common case, without parsing
        return []
    values = _parse(header)
    return [name for name in APP_COOKIES if len(values.get(name, ())) > (0 if secure else 1)]


def deletions(names: list[str], host: str, path: str, secure: bool) -> list[bytes]:
    """``Set-Cookie`` values that remove every copy of ``names`` a sibling can have put where
    this request (``host``, ``path``) gets it, and not the app's own (see the module docstring)."""
    headers = []
    prefixes = _path_prefixes(path)
    tail = "; Secure" if secure else ""
    for name in names:
        for domain in _cookie_domains(host):
            headers += [f"{name}=; Domain={domain}; Path={prefix}; {_EXPIRED}{tail}" for prefix in prefixes]
        headers += [f"{name}=; Path={prefix}; {_EXPIRED}{tail}" for prefix in prefixes if secure or prefix != "/"]
    return [value.encode("latin-1") for value in headers]
