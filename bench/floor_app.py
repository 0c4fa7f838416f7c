"""The floor: the app's three hottest API calls on the bare stack (issue 14).

A Starlette app with a pool of psycopg2 connections and nothing above it: no FastAPI, no
SQLAlchemy, no pydantic, no Reflex, no middleware. It runs the same statements as the
domain does for

- ``GET /api/v1/profile/me/``: the session lookup, the profile and its first page;
- ``POST /api/v1/auth/auth_code/``: take an attempt, check the code's HMAC, delete the code,
  find or create the user, commit; insert a session, commit;
- ``POST /api/v1/profile/activate_invite/``: the session lookup, the user, the code's owner,
  the owner's root, both trees' advisory locks, the root check, the link, the count, commit;

on the same tables with the same data, with the same per-request work that is not SQL
(phone parsing with libphonenumber, HMAC-SHA-256 of the code, SHA-256 of the token, a new
random token and invite code). What it leaves out is what the app adds above the bare
stack, plus two things that are not about speed: the error answers (a wrong code or a
used-up user is a 400 with a bare message here) and the live update an activation
publishes through Redis.

``make bench`` (``python -m bench``) starts it with Granian, as the app's workers are
started, and runs it interleaved with the app::

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/db SECRET_KEY=... \\
        granian --interface asgi --workers 2 bench.floor_app:app

Sync endpoints: Starlette runs them in its thread pool, as FastAPI runs the app's routes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import queue
import re
import secrets
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import phonenumbers
import psycopg2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# The app's defaults (referral_app/settings.py); the bench runs both sides with them.
SECRET_KEY = os.environ.get("SECRET_KEY", "bench").encode()
POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", "8")) + int(os.environ.get("DB_MAX_OVERFLOW", "4"))
CODE_LENGTH, CODE_MAX_ATTEMPTS, SESSION_TTL, PAGE_SIZE = 4, 5, timedelta(days=30), 20
INVITE_ALPHABET, INVITE_LENGTH = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ", 6
_INVITE_CODE = re.compile(f"[{INVITE_ALPHABET}]{{{INVITE_LENGTH}}}")


def _dsn() -> str:
    url = os.environ["DATABASE_URL"]
    return url.replace("postgresql+psycopg2://", "postgresql://", 1)


class Pool:
    """Up to ``size`` psycopg2 connections, opened when first needed and kept open; a thread
    that finds them all in use waits for one (the app's SQLAlchemy pool keeps DB_POOL_SIZE
    and opens DB_MAX_OVERFLOW more at peaks; psycopg2's own pools raise instead of waiting,
    and close returned connections above ``minconn``)."""

    def __init__(self, size: int) -> None:
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def transaction(self):
        """A cursor in a transaction: committed on success, rolled back on an exception."""
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = psycopg2.connect(_dsn(), connect_timeout=5)
            try:
                with conn, conn.cursor() as cur:  # psycopg2: commit or rollback at the end
                    yield cur
            finally:
                if not conn.closed:
                    self._idle.put(conn)


_pool: Pool | None = None


def pool() -> Pool:
    global _pool
    if _pool is None:  # per worker process, after Granian has started it
        _pool = Pool(POOL_SIZE)
    return _pool


class Refused(Exception):
    """A request the app would answer with a 4xx; here a bare 400/401."""

    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


def _now() -> datetime:
    return datetime.now(UTC)


def _token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "token") or not 0 < len(token) <= 128:
        raise Refused(401, "not authenticated")
    return token


def _phone(raw: object) -> str:
    if not isinstance(raw, str):
        raise Refused(400, "invalid phone")
    try:
        number = phonenumbers.parse(raw.strip(), "RU")
    except phonenumbers.NumberParseException:
        raise Refused(400, "invalid phone") from None
    if not phonenumbers.is_valid_number(number):
        raise Refused(400, "invalid phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


SESSION_USER = """
    SELECT s.user_id FROM auth_sessions s JOIN users u ON s.user_id = u.id
    WHERE s.token_hash = %s AND s.claim_hash IS NULL AND s.revoked_at IS NULL AND s.expires_at > %s
      AND u.is_active
"""


def _user_id(cur, token: str) -> int:
    cur.execute(SESSION_USER, (hashlib.sha256(token.encode()).hexdigest(), _now()))
    row = cur.fetchone()
    if row is None:
        raise Refused(401, "not authenticated")
    return row[0]


async def _json(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise Refused(400, "not JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "not an object")
    return body


def _answer(work):
    try:
        return JSONResponse(work())
    except Refused as refused:
        return JSONResponse({"detail": refused.detail}, status_code=refused.status)


# --------------------------------------------------------------------------- profile/me

PROFILE = """
    SELECT u.phone_number, u.invite_code, i.invite_code, i.phone_number, u.activated_at, u.invited_count
    FROM users u LEFT OUTER JOIN users i ON i.id = u.invited_by_id WHERE u.id = %s
"""
REFERRALS = """
    SELECT phone_number, activated_at, id FROM users WHERE invited_by_id = %s
    ORDER BY activated_at DESC, id DESC LIMIT %s
"""


def _cursor(activated_at: datetime, user_id: int) -> str:
    raw = f"{activated_at.astimezone(UTC).isoformat()}|{user_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def profile(request: Request) -> JSONResponse:
    def work() -> dict:
        token = _token(request)
        with pool().transaction() as cur:
            user_id = _user_id(cur, token)
            cur.execute(PROFILE, (user_id,))
            me = cur.fetchone()
            if me is None:
                raise Refused(401, "not authenticated")
            cur.execute(REFERRALS, (user_id, PAGE_SIZE + 1))
            rows = cur.fetchall()
        last = rows[PAGE_SIZE - 1] if len(rows) > PAGE_SIZE else None
        return {
            "phone_number": me[0], "invite_code": me[1], "activated_invite_code": me[2], "invited_by": me[3],
            "invited_count": me[5],
            "invited_users": [{"phone_number": phone, "activated_at": _iso(at)} for phone, at, _ in rows[:PAGE_SIZE]],
            "next_cursor": _cursor(last[1], last[2]) if last else None,
        }

    return _answer(work)


# --------------------------------------------------------------------------- auth_code

TAKE_ATTEMPT = """
    UPDATE confirmation_codes SET attempts = attempts + 1
    WHERE phone_number = %s AND expires_at > %s AND attempts < %s
    RETURNING id, code_hash, attempts
"""
DELETE_CODE = "DELETE FROM confirmation_codes WHERE id = %s"
USER_BY_PHONE = "SELECT * FROM users WHERE phone_number = %s"
CREATE_USER = """
    INSERT INTO users (phone_number, invite_code, invited_count, is_active, created_at)
    VALUES (%s, %s, 0, true, %s) ON CONFLICT DO NOTHING RETURNING *
"""
INSERT_SESSION = """
    INSERT INTO auth_sessions (user_id, token_hash, claim_hash, claim_expires_at, created_at, expires_at, revoked_at)
    VALUES (%s, %s, NULL, NULL, %s, %s, NULL)
"""


def _sign_in(phone: str, code: str) -> int:
    """Use up the phone's code and return its user (created on first sign-in); one transaction."""
    now = _now()
    with pool().transaction() as cur:
        cur.execute(TAKE_ATTEMPT, (phone, now, CODE_MAX_ATTEMPTS))
        taken = cur.fetchone()
        if taken is None:
            raise Refused(400, "wrong code")
        expected = hmac.new(SECRET_KEY, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(taken[1], expected):
            raise Refused(400, "wrong code")  # the app commits the attempt; the bench sends only valid codes
        cur.execute(DELETE_CODE, (taken[0],))
        if cur.rowcount != 1:
            raise Refused(400, "wrong code")
        cur.execute(USER_BY_PHONE, (phone,))
        user = cur.fetchone()
        while user is None:
            invite_code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH))
            cur.execute(CREATE_USER, (phone, invite_code, now))
            user = cur.fetchone()
        return user[0]


def auth_code(request: Request, body: dict) -> JSONResponse:
    def work() -> dict:
        phone = _phone(body.get("phone_number"))
        code = body.get("confirmation_code")
        if not isinstance(code, str) or len(code) != CODE_LENGTH or not code.isdigit():
            raise Refused(400, "invalid code")
        user_id = _sign_in(phone, code)
        now = _now()
        token = secrets.token_urlsafe(32)
        with pool().transaction() as cur:
            cur.execute(INSERT_SESSION, (user_id, hashlib.sha256(token.encode()).hexdigest(), now, now + SESSION_TTL))
        return {"token": token}

    return _answer(work)


# --------------------------------------------------------------------------- activate_invite

ME = "SELECT id, phone_number, invited_by_id FROM users WHERE id = %s"
CODE_OWNER = "SELECT id, phone_number, invite_code FROM users WHERE invite_code = %s"
TREE_ROOT = """
    WITH RECURSIVE chain(id, parent) AS (
        SELECT id, invited_by_id FROM users WHERE id = %s
        UNION
        SELECT u.id, u.invited_by_id FROM users u JOIN chain c ON u.id = c.parent
    )
    SELECT id FROM chain WHERE parent IS NULL
"""
LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
IS_ROOT = "SELECT id FROM users WHERE id = %s AND invited_by_id IS NULL"
LINK = "UPDATE users SET invited_by_id = %s, activated_at = %s WHERE id = %s AND invited_by_id IS NULL"
COUNT_REFERRAL = "UPDATE users SET invited_count = invited_count + 1 WHERE id = %s"


class _Retry(Exception):
    """The owner's root was attached meanwhile: roll back and look again."""


def _activate(cur, user_id: int, code: str) -> tuple:
    cur.execute(ME, (user_id,))
    me = cur.fetchone()
    if me is None:
        raise Refused(401, "not authenticated")
    if me[2] is not None:
        raise Refused(400, "already activated")
    cur.execute(CODE_OWNER, (code,))
    owner = cur.fetchone()
    if owner is None:
        raise Refused(400, "unknown code")
    if owner[0] == user_id:
        raise Refused(400, "own code")
    cur.execute(TREE_ROOT, (owner[0],))
    root = cur.fetchone()[0]
    if root == user_id:
        raise Refused(400, "loop")
    for tree in sorted((user_id, root)):
        cur.execute(LOCK, (f"referral-tree:{tree}",))
    cur.execute(IS_ROOT, (root,))
    if cur.fetchone() is None:
        raise _Retry()
    cur.execute(LINK, (owner[0], _now(), user_id))
    if cur.rowcount != 1:
        raise Refused(400, "already activated")
    cur.execute(COUNT_REFERRAL, (owner[0],))
    return owner


def activate_invite(request: Request, body: dict) -> JSONResponse:
    def work() -> dict:
        token = _token(request)
        raw = body.get("invite_code")
        code = re.sub(r"[\s\-]+", "", raw).upper() if isinstance(raw, str) and len(raw) <= 32 else ""
        if not _INVITE_CODE.fullmatch(code):
            raise Refused(400, "invalid code")
        for _ in range(10):
            try:
                with pool().transaction() as cur:
                    owner = _activate(cur, _user_id(cur, token), code)
                break
            except _Retry:
                continue
        else:
            raise RuntimeError("the referral tree kept changing")
        return {"message": f"Invite code {owner[2]} activated.", "invited_by": owner[1]}

    return _answer(work)


def _with_body(endpoint):
    """Read the JSON body on the event loop, then run ``endpoint`` in the thread pool (as FastAPI does)."""

    async def route(request: Request) -> JSONResponse:
        try:
            body = await _json(request)
        except Refused as refused:
            return JSONResponse({"detail": refused.detail}, status_code=refused.status)
        return await run_in_threadpool(endpoint, request, body)

    return route


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[
    Route("/health", health),
    Route("/api/v1/profile/me/", profile),
    Route("/api/v1/auth/auth_code/", _with_body(auth_code), methods=["POST"]),
    Route("/api/v1/profile/activate_invite/", _with_body(activate_invite), methods=["POST"]),
])
