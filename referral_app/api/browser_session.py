"""Turns a one-time sign-in claim into the browser's HttpOnly session cookie, and back.

The sign-in page calls these right after a successful code check and on sign-out, so
the session token never appears in page state or in reach of scripts. Both answer only
requests from a page of the app's own origin (or ``ALLOWED_ORIGINS``): a page on a
sibling origin must not sign the visitor into its own account, nor out (403
``request.origin_not_allowed``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from referral_app.infra import cookies
from referral_app.infra.origins import origin_allowed, source_origin
from referral_app.domain import sessions
from referral_app.domain.errors import DomainError
from referral_app.services import auth


class OriginNotAllowed(DomainError):
    """A request that carries the browser's session came from a page of another origin (HTTP 403)."""

    code = "request.origin_not_allowed"


def own_pages_only(request: Request) -> None:
    """Refuse a request whose ``Origin`` (or ``Referer``) the origin policy does not allow."""
    if not origin_allowed(source_origin(request.scope), request.scope):
        raise OriginNotAllowed()


router = APIRouter(
    prefix="/api/v1/auth/browser_session", include_in_schema=False, dependencies=[Depends(own_pages_only)]
)


class ClaimIn(BaseModel):
    claim: str = Field(max_length=sessions.MAX_TOKEN_LENGTH)


@router.post("/")
async def claim_session(body: ClaimIn, request: Request) -> Response:
    """Trade the claim issued by the sign-in page for the session cookie.

    Answers 200 ``{"binding": "..."}``: the session's binding (``infra/cookies.py``), which
    the page keeps in its ``localStorage`` and presents with the cookie from then on.
    """
    token = await auth.claim_browser_session(body.claim)
    response = JSONResponse({"binding": cookies.session_binding(token)}, headers={"Cache-Control": "no-store"})
    response.raw_headers.append((b"set-cookie", cookies.session_cookie(token, cookies.is_secure(request.scope))))
    return response


@router.delete("/")
async def drop_session(request: Request) -> Response:
    """Revoke the cookie's session (if any) and remove the cookie."""
    secure = cookies.is_secure(request.scope)
    token = cookies.session_token_from_header(cookies.cookie_header(request.scope), secure)
    if token:
        await auth.sign_out(token, require_live=False)
    response = Response(status_code=204)
    response.raw_headers.append((b"set-cookie", cookies.expired_session_cookie(secure)))
    return response
