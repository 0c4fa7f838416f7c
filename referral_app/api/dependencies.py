"""Request-scoped pieces: the caller's session token and address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from referral_app.infra.client_ip import request_client_ip as scope_client_ip
from referral_app.domain.errors import NotAuthenticated

# Declared for the OpenAPI document ("Authorize" in the docs); the header is parsed below
# because the original API also accepted the "Token" scheme, which HTTPBearer does not.
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>` or `Token <token>`")
AUTH_SCHEMES = {"bearer", "token"}


async def session_token(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """The token of ``Authorization: Bearer|Token <token>``; 401 without one.

    Whether the token is live is checked by the route, in the same database session as
    the rest of its work (one worker thread and one connection per request).
    """
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() not in AUTH_SCHEMES or not token:
        raise NotAuthenticated()
    return token


Token = Annotated[str, Depends(session_token)]


async def request_client_ip(request: Request) -> str:
    """The caller's address, as ``infra/client_ip.py`` resolved it from the socket and trusted proxies."""
    return scope_client_ip(request.scope)


ClientIp = Annotated[str, Depends(request_client_ip)]
