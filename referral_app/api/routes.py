"""The REST routes: each parses the request, calls one service, shapes the answer.

Routes are async: the service hands its database work to a worker thread once. (A sync
route would cost a second hand-off: FastAPI validates a sync route's answer in the pool too.)
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from referral_app.api.dependencies import ClientIp, Token
from referral_app.api.schemas import (
    ActivateInviteIn,
    ActivateInviteOut,
    AuthCodeIn,
    ErrorOut,
    ProfileOut,
    ReferralOut,
    ReferralPageOut,
    RequestCodeIn,
    RequestCodeOut,
    TokenOut,
)
from referral_app.domain.referrals import ReferralPage
from referral_app.i18n import translate
from referral_app.services import auth, profile as profiles, referrals
from referral_app.settings import settings

BAD_REQUEST = {400: {"model": ErrorOut, "description": "Malformed input or a broken rule."}}
UNAUTHORIZED = {401: {"model": ErrorOut, "description": "Missing, invalid, expired or revoked token."}}
RATE_LIMITED = {
    429: {
        "model": ErrorOut,
        "description": "A send limit was reached; `Retry-After` says in how many seconds to try again.",
        "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    },
    503: {
        "model": ErrorOut,
        "description": "The SMS gateway failed or missed its deadline (`sms.unavailable`); no code was "
        "issued and the phone's cooldown is not held. `Retry-After` says when to try again.",
        "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    },
}
NOT_JSON = {
    413: {"model": ErrorOut, "description": "Body larger than 16 kB."},
    415: {"model": ErrorOut, "description": "Body is not JSON."},
}

router = APIRouter(prefix="/api/v1")


def _items(page: ReferralPage) -> list[ReferralOut]:
    return [ReferralOut(phone_number=item.phone_number, activated_at=item.activated_at) for item in page.items]


@router.post(
    "/auth/request_code/",
    tags=["auth"],
    response_model=RequestCodeOut,
    response_model_exclude_none=True,
    responses={**BAD_REQUEST, **RATE_LIMITED, **NOT_JSON},
)
async def request_code(body: RequestCodeIn, ip: ClientIp) -> RequestCodeOut:
    """Send a one-time code to the phone (by SMS; simulated in demo mode). The answer is the
    same for new and known numbers; the code is in it only in demo mode. Limited per phone
    (a cooldown, per 10 minutes, per day) and per client IP.

    The answer waits for the SMS gateway's acceptance (at most `SMS_SEND_TIMEOUT_SECONDS`),
    and `expires_in` counts from it, so it is exact. A gateway that fails or misses the
    deadline gives 503 `sms.unavailable` with `Retry-After`, and no code."""
    issued = await auth.request_code(body.phone_number, ip)
    return RequestCodeOut(
        confirmation_code=issued.code if settings.demo_mode else None, expires_in=issued.ttl_seconds
    )


@router.post("/auth/auth_code/", tags=["auth"], response_model=TokenOut, responses={**BAD_REQUEST, **NOT_JSON})
async def auth_code(body: AuthCodeIn) -> TokenOut:
    """Check the code and sign in; the first sign-in of a phone creates the user."""
    return TokenOut(token=await auth.sign_in(body.phone_number, body.confirmation_code))


@router.post("/auth/logout/", tags=["auth"], status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHORIZED)
async def logout(token: Token) -> Response:
    """End the session of the token (in the browser too, if it is the same session)."""
    await auth.sign_out(token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/profile/me/", tags=["profile"], response_model=ProfileOut, responses=UNAUTHORIZED)
async def profile(token: Token) -> ProfileOut:
    """Your profile with the first page of the users who entered your code."""
    view = await profiles.read_profile(token)
    me, page = view.profile, view.first_page
    return ProfileOut(
        phone_number=me.phone_number,
        invite_code=me.invite_code,
        activated_invite_code=me.activated_invite_code,
        invited_by=me.invited_by,
        invited_count=me.invited_count,
        invited_users=_items(page),
        next_cursor=page.next_cursor,
    )


@router.get(
    "/profile/me/referrals/",
    tags=["profile"],
    response_model=ReferralPageOut,
    responses={**BAD_REQUEST, **UNAUTHORIZED},
)
async def referral_page(token: Token, cursor: str | None = None, limit: int = 20) -> ReferralPageOut:
    """One page of the users who entered your code, newest first (`limit` 1–100)."""
    page = await profiles.referral_page(token, cursor=cursor, limit=limit)
    return ReferralPageOut(items=_items(page), next_cursor=page.next_cursor)


@router.post(
    "/profile/activate_invite/",
    tags=["profile"],
    response_model=ActivateInviteOut,
    responses={**BAD_REQUEST, **UNAUTHORIZED, **NOT_JSON},
)
async def activate_invite(body: ActivateInviteIn, token: Token) -> ActivateInviteOut:
    """Enter another user's invite code: once, never your own, never one of your referrals'."""
    owner = await referrals.activate_invitation(token, body.invite_code)
    return ActivateInviteOut(
        message=translate("invite.activated", code=owner.invite_code), invited_by=owner.phone_number
    )
