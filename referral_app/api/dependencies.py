"""Request-scoped pieces: the caller's session token and address."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from referral_app.infra.client_ip import client_ip
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
    """The caller's address (``X-Forwarded-For`` only from a trusted proxy)."""
    peer = request.client.host if request.client else None
    # Proxies may add their own header line: read all of them, in order.
    return client_ip(peer, ", ".join(request.headers.getlist("x-forwarded-for")))


ClientIp = Annotated[str, Depends(request_client_ip)]
