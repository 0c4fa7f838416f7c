"""The REST routes: each parses the request, calls the domain, shapes the answer.

Each route does its database work in one worker thread with one session, handed to the
thread pool once from an async route. (A sync route would cost a second hand-off: FastAPI
validates a sync route's answer in the pool too.)
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.concurrency import run_in_threadpool

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
from referral_app.infra.db import read_scope, session_scope
from referral_app.domain import auth, referrals, sessions
from referral_app.domain.codes import IssuedCode
from referral_app.domain.errors import Unavailable
from referral_app.domain.referrals import ReferralPage
from referral_app.domain.sms import sms_sender
from referral_app.i18n import translate
from referral_app.infra.live import referral_feed
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

    def issue() -> IssuedCode:
        with session_scope() as db:
            return auth.request_code(db, body.phone_number, ip)

    def withdraw() -> None:
        with session_scope() as db:
            auth.code_not_sent(db, issued)

    def accept() -> None:
        with session_scope() as db:
            auth.code_accepted(db, issued, accepted_at)

    issued = await run_in_threadpool(issue)
    try:
        accepted_at = await auth.send_code(issued, sms_sender)
    except Unavailable:
        await run_in_threadpool(withdraw)
        raise
    await run_in_threadpool(accept)
    return RequestCodeOut(
        confirmation_code=issued.code if settings.demo_mode else None, expires_in=issued.ttl_seconds
    )


@router.post("/auth/auth_code/", tags=["auth"], response_model=TokenOut, responses={**BAD_REQUEST, **NOT_JSON})
async def auth_code(body: AuthCodeIn) -> TokenOut:
    """Check the code and sign in; the first sign-in of a phone creates the user."""

    def sign_in() -> str:
        with session_scope() as db:
            user = auth.sign_in(db, body.phone_number, body.confirmation_code)
            return sessions.create_session(db, user.id)

    return TokenOut(token=await run_in_threadpool(sign_in))


@router.post("/auth/logout/", tags=["auth"], status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHORIZED)
async def logout(token: Token) -> Response:
    """End the session of the token (in the browser too, if it is the same session)."""

    def revoke() -> None:
        with session_scope() as db:
            sessions.authenticated_user_id(db, token)
            sessions.revoke_session(db, token)

    await run_in_threadpool(revoke)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/profile/me/", tags=["profile"], response_model=ProfileOut, responses=UNAUTHORIZED)
async def profile(token: Token) -> ProfileOut:
    """Your profile with the first page of the users who entered your code."""

    def read() -> tuple[referrals.Profile, ReferralPage]:
        with read_scope() as db:
            user_id = sessions.authenticated_user_id(db, token)
            me = referrals.get_profile(db, user_id)
            return me, referrals.list_referrals(db, user_id, limit=settings.referral_page_size)

    me, page = await run_in_threadpool(read)
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

    def read() -> ReferralPage:
        with read_scope() as db:
            user_id = sessions.authenticated_user_id(db, token)
            return referrals.list_referrals(db, user_id, cursor=cursor, limit=limit)

    page = await run_in_threadpool(read)
    return ReferralPageOut(items=_items(page), next_cursor=page.next_cursor)


@router.post(
    "/profile/activate_invite/",
    tags=["profile"],
    response_model=ActivateInviteOut,
    responses={**BAD_REQUEST, **UNAUTHORIZED, **NOT_JSON},
)
async def activate_invite(body: ActivateInviteIn, token: Token) -> ActivateInviteOut:
    """Enter another user's invite code: once, never your own, never one of your referrals'."""

    def activate() -> referrals.Inviter:
        with session_scope() as db:
            return referrals.activate_invite(db, sessions.authenticated_user_id(db, token), body.invite_code)

    owner = await run_in_threadpool(activate)
    await referral_feed.publish(owner.id)
    return ActivateInviteOut(
        message=translate("invite.activated", code=owner.invite_code), invited_by=owner.phone_number
    )
