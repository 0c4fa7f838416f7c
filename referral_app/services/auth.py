"""Sign-in use cases: request a one-time code, sign in, sign out, check a session.

A code request has three steps because the SMS gateway is slow and may fail: the code is
issued (send limits, one transaction), handed to the gateway within its deadline with no
transaction open, then its lifetime starts at the gateway's acceptance, or it is withdrawn
if the gateway failed (SPEC §3, §16). The REST route runs them as one (:func:`request_code`);
the sign-in page runs them apart, to show progress (``state/login.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from referral_app.domain import auth, sessions
from referral_app.domain.codes import IssuedCode
from referral_app.domain.errors import DomainError
from referral_app.domain import sms
from referral_app.services import unit_of_work


async def issue_code(raw_phone: Any, client_ip: str) -> IssuedCode:
    """Issue a code for the phone within the send limits (not yet sent).

    Raises a field error (``phone.*``) for a malformed number and ``RateLimited`` over a limit.
    """
    return await unit_of_work.run(lambda db: auth.request_code(db, raw_phone, client_ip))


async def withdraw_code(issued: IssuedCode) -> None:
    """The code will not be sent after all: delete it and free the phone's cooldown."""
    await unit_of_work.run(lambda db: auth.code_not_sent(db, issued))


async def deliver_code(issued: IssuedCode, language: str | None = None) -> IssuedCode | None:
    """Send ``issued`` by SMS in ``language``, within ``SMS_SEND_TIMEOUT_SECONDS``; start its lifetime.

    Returns the code with its final expiry (counted from the gateway's acceptance), or
    None when a newer request for the number replaced it meanwhile. A gateway that fails
    or misses the deadline raises ``Unavailable`` after the code is withdrawn (any other
    error is raised after the withdrawal too). Dispatches ``CodeSent``. The gateway is
    ``domain.sms.sms_sender``, looked up at each call (tests replace it there).
    """
    try:
        accepted_at = await auth.send_code(issued, sms.sms_sender, language)
    except Exception:
        await withdraw_code(issued)
        raise
    return await unit_of_work.run(lambda db: auth.code_accepted(db, issued, accepted_at))


async def request_code(raw_phone: Any, client_ip: str) -> IssuedCode:
    """Issue a code and send it (:func:`issue_code`, then :func:`deliver_code`); the REST route's use case.

    Returns the issued code (``ttl_seconds`` counts from the acceptance).
    """
    issued = await issue_code(raw_phone, client_ip)
    await deliver_code(issued)
    return issued


async def sign_in(raw_phone: Any, raw_code: Any) -> str:
    """Check the code and start an API session; returns its bearer token.

    The phone's first sign-in creates the user (``UserCreated``; ``UserSignedIn`` always).
    Raises a field error for malformed input, ``WrongCode``, ``TooManyAttempts``, ``CodeExpired``
    or ``AccountDisabled``.
    """

    def work(db) -> str:
        return sessions.create_session(db, auth.sign_in(db, raw_phone, raw_code).id)

    return await unit_of_work.run(work)


@dataclass(frozen=True)
class BrowserSignIn:
    """A page's sign-in: the user, and the one-time claim the browser trades for its cookie."""

    user_id: int
    claim: str


async def sign_in_browser(raw_phone: Any, raw_code: Any) -> BrowserSignIn:
    """As :func:`sign_in`, for a page: the session starts when the browser presents the claim
    (:func:`claim_browser_session`), so the cookie is set by an HTTP answer."""

    def work(db) -> BrowserSignIn:
        user = auth.sign_in(db, raw_phone, raw_code)
        return BrowserSignIn(user.id, sessions.create_browser_claim(db, user.id))

    return await unit_of_work.run(work)


async def claim_browser_session(claim: Any) -> str:
    """Trade a browser claim (once, while fresh) for the session's token; ``NotAuthenticated`` otherwise."""
    return await unit_of_work.run(lambda db: sessions.claim_browser_session(db, claim))


async def authenticate(token: Any) -> int:
    """The user id of a live session token; raises ``NotAuthenticated`` (missing, unknown,
    expired, revoked, or a deactivated user's)."""
    return await unit_of_work.read(lambda db: sessions.authenticated_user_id(db, token))


async def user_of(token: str | None) -> int | None:
    """As :func:`authenticate`, None instead of the error (and for no token)."""
    if token is None:
        return None
    try:
        return await authenticate(token)
    except DomainError:
        return None


async def sign_out(token: Any, require_live: bool = True) -> None:
    """End the session of ``token`` (every door: API, page, cookie).

    With ``require_live`` (the API's logout) a token that is not a live session raises
    ``NotAuthenticated`` and nothing changes; without it (a page's or the cookie's sign-out)
    whatever session the token names is ended, if any.
    """

    def work(db) -> None:
        if require_live:
            sessions.authenticated_user_id(db, token)
        sessions.revoke_session(db, token)

    await unit_of_work.run(work)
