"""The REST routes: each parses the request, calls one domain function, shapes the answer."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.concurrency import run_in_threadpool

from referral_app.api.dependencies import ClientIp, CurrentUser, DbSession, Token
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
from referral_app.domain import auth, referrals, sessions
from referral_app.domain.referrals import ReferralPage
from referral_app.domain.sms import sms_sender
from referral_app.i18n import translate
from referral_app.live import referral_feed
from referral_app.settings import settings

BAD_REQUEST = {400: {"model": ErrorOut, "description": "Malformed input or a broken rule."}}
UNAUTHORIZED = {401: {"model": ErrorOut, "description": "Missing, invalid, expired or revoked token."}}
RATE_LIMITED = {
    429: {
        "model": ErrorOut,
        "description": "A send limit was reached; `Retry-After` says in how many seconds to try again.",
        "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    },
    503: {"model": ErrorOut, "description": "The SMS gateway failed; try again later."},
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
async def request_code(body: RequestCodeIn, db: DbSession, ip: ClientIp) -> RequestCodeOut:
    """Send a one-time code to the phone (by SMS; simulated in demo mode). The answer is the
    same for new and known numbers; the code is in it only in demo mode. Limited per phone
    (a cooldown, per 10 minutes, per day) and per client IP."""
    issued = await run_in_threadpool(auth.request_code, db, body.phone_number, ip)
    await auth.send_code(issued, sms_sender)
    return RequestCodeOut(
        confirmation_code=issued.code if settings.demo_mode else None, expires_in=issued.ttl_seconds
    )


@router.post("/auth/auth_code/", tags=["auth"], response_model=TokenOut, responses={**BAD_REQUEST, **NOT_JSON})
def auth_code(body: AuthCodeIn, db: DbSession) -> TokenOut:
    """Check the code and sign in; the first sign-in of a phone creates the user."""
    user = auth.sign_in(db, body.phone_number, body.confirmation_code)
    return TokenOut(token=sessions.create_session(db, user.id))


@router.post("/auth/logout/", tags=["auth"], status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHORIZED)
def logout(user: CurrentUser, token: Token, db: DbSession) -> Response:
    """End the session of the token (in the browser too, if it is the same session)."""
    sessions.revoke_session(db, token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/profile/me/", tags=["profile"], response_model=ProfileOut, responses=UNAUTHORIZED)
def profile(user: CurrentUser, db: DbSession) -> ProfileOut:
    """Your profile with the first page of the users who entered your code."""
    me = referrals.get_profile(db, user.id)
    page = referrals.list_referrals(db, user.id, limit=settings.referral_page_size)
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
def referral_page(
    user: CurrentUser, db: DbSession, cursor: str | None = None, limit: int = 20
) -> ReferralPageOut:
    """One page of the users who entered your code, newest first (`limit` 1–100)."""
    page = referrals.list_referrals(db, user.id, cursor=cursor, limit=limit)
    return ReferralPageOut(items=_items(page), next_cursor=page.next_cursor)


@router.post(
    "/profile/activate_invite/",
    tags=["profile"],
    response_model=ActivateInviteOut,
    responses={**BAD_REQUEST, **UNAUTHORIZED, **NOT_JSON},
)
async def activate_invite(body: ActivateInviteIn, user: CurrentUser, db: DbSession) -> ActivateInviteOut:
    """Enter another user's invite code: once, never your own, never one of your referrals'."""
    owner = await run_in_threadpool(referrals.activate_invite, db, user.id, body.invite_code)
    await referral_feed.publish(owner.id)
    return ActivateInviteOut(
        message=translate("invite.activated", code=owner.invite_code), invited_by=owner.phone_number
    )
