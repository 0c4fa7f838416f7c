"""Request-scoped pieces: the caller's session token and address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from referral_app.infra.client_ip import request_client_ip as scope_client_ip
from referral_app.domain.errors import NotAuthenticated

AUTH_SCHEMES = {"bearer", "token"}


class SessionTokenAuth(HTTPBearer):
    """The token of ``Authorization: Bearer|Token <token>``; 401 without one.

    Documented as HTTP bearer ("Authorize" in the docs), but it also takes the "Token" scheme
    the original API accepted, which HTTPBearer does not; one dependency, not HTTPBearer's
    and a parser of our own on top of it (issue 14: fewer dependencies to solve per request).

    Whether the token is live is checked by the route, in the same database session as
    the rest of its work (one worker thread and one connection per request).
    """

    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() not in AUTH_SCHEMES or not token:
            raise NotAuthenticated()
        return token


session_token = SessionTokenAuth(
    scheme_name="HTTPBearer", auto_error=False, description="`Authorization: Bearer <token>` or `Token <token>`"
)
Token = Annotated[str, Depends(session_token)]


async def request_client_ip(request: Request) -> str:
    """The caller's address, as ``infra/client_ip.py`` resolved it from the socket and trusted proxies."""
    return scope_client_ip(request.scope)


ClientIp = Annotated[str, Depends(request_client_ip)]
