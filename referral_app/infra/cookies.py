"""The browser's session cookie, shared by the Reflex states and the REST API."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from referral_app.settings import settings

SESSION_COOKIE = "referral_session"


def session_token_from_header(cookie_header: str) -> str | None:
    """The session token in a raw ``Cookie`` header, if there is one."""
    cookies = SimpleCookie()
    try:
        cookies.load(cookie_header or "")
    except CookieError:
        return None
    morsel = cookies.get(SESSION_COOKIE)
    return morsel.value if morsel else None


def session_cookie_options() -> dict:
    """HttpOnly (scripts never see the token), SameSite=Lax; ``SecureCookiesOnHttps`` adds Secure."""
    return {
        "key": SESSION_COOKIE,
        "httponly": True,
        "samesite": "lax",
        "path": "/",
        "max_age": settings.session_ttl_days * 24 * 3600,
    }
