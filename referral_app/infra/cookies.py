"""The app's cookies: the browser's session cookie, and the helpers the admin's cookies share.

Every cookie here is ``HttpOnly`` (scripts never see it), ``SameSite=Lax`` and ``Path=/``.
Over HTTPS it is also ``Secure`` and its name starts with ``__Host-`` (RFC 6265bis §4.1.3.2):
a browser then accepts it only from this host, over HTTPS, without ``Domain``, so a page on
a sibling subdomain can neither set nor replace it ("cookie tossing"). Over plain HTTP no
name can prevent that, so a name that comes more than once counts as no cookie at all:
a tossed cookie can sign the visitor out, never into someone else's account.

Whether a request came over HTTPS is the scheme the client used (``scope["scheme"]``,
which ``infra/proxy.py`` sets from a trusted proxy's ``X-Forwarded-Proto``).
"""

from __future__ import annotations

from starlette.types import Scope

from referral_app.settings import settings

HOST_PREFIX = "__Host-"
SESSION_COOKIE = "referral_session"


def is_secure(scope: Scope) -> bool:
    """Whether the client used HTTPS (or WSS) for this request."""
    return scope.get("scheme") in ("https", "wss")


def cookie_name(name: str, secure: bool) -> str:
    """``referral_session`` over HTTP, ``__Host-referral_session`` over HTTPS."""
    return HOST_PREFIX + name if secure else name


def cookie_header(scope: Scope) -> str:
    """All ``Cookie`` header lines of a request, joined as RFC 6265 §5.4 sends them."""
    return "; ".join(value.decode("latin-1") for key, value in scope.get("headers", ()) if key.lower() == b"cookie")


def read_cookie(header: str | None, name: str, secure: bool) -> str | None:
    """The value of the app's cookie ``name`` in a ``Cookie`` header, or None.

    The ``__Host-`` name is read when present: only this host, over HTTPS, can have set
    it. Otherwise, over HTTPS, there is no cookie (a plain name could come from a sibling);
    over HTTP the plain name is read. A name sent more than once is no cookie.
    """
    values: dict[str, list[str]] = {}
    for part in (header or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            values.setdefault(key.strip(), []).append(value.strip().strip('"'))
    found = values.get(HOST_PREFIX + name)
    if found is None and not secure:
        found = values.get(name)
    return found[0] if found and len(found) == 1 and found[0] else None


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
    """The browser's session token in a raw ``Cookie`` header (see :func:`read_cookie`)."""
    return read_cookie(header, SESSION_COOKIE, secure)


def session_cookie(token: str, secure: bool) -> bytes:
    """The ``Set-Cookie`` value of the browser's session cookie (it lives as long as the session)."""
    return cookie_header_value(SESSION_COOKIE, token, secure, max_age=settings.session_ttl_days * 24 * 3600)


def expired_session_cookie(secure: bool) -> bytes:
    return expired_cookie_header_value(SESSION_COOKIE, secure)
