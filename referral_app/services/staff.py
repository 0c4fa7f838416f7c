"""Staff use cases: the console's sign-in and sessions, its actions on users, sessions and
webhooks, the dashboard, the CSV exports, and the staff accounts of the command line.

The staff console (``admin/``) finds who acts (``StaffActor``: the signed-in staff account
and its client address) from the session its guard looked up (:func:`staff_of_session`);
every action and every export takes that actor and goes into the audit log in its own
transaction, so what staff did is always known. Resending a webhook is
``services.webhooks.resend``. Staff accounts are made and switched off from the command
line only (``python -m referral_app create-admin NAME``), never from the console.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from referral_app.domain import audit, insights, sessions, staff, users, webhooks
from referral_app.domain.audit import StaffActor
from referral_app.domain.clock import utcnow
from referral_app.domain.insights import Dashboard
from referral_app.domain.staff import StaffIdentity
from referral_app.domain.webhooks import Attempt
from referral_app.services import unit_of_work

# --- the console's sign-in -------------------------------------------------------------------


async def sign_in(username: str, password: str, client_ip: str) -> str:
    """Check a staff login from ``client_ip`` and start a staff session; returns its id (the
    cookie's secret, 256 random bits; the database keeps its SHA-256), valid 8 hours.

    Raises ``InvalidCredentials`` for an unknown username, a wrong password or a deactivated
    account alike, and ``StaffLockedOut`` after 5 failures for the username or the address
    in 15 minutes (a failure is recorded even so).
    """

    def work(db) -> str:
        return staff.start_staff_session(db, staff.authenticate_staff(db, username, password, client_ip).id)

    return await unit_of_work.run(work)


async def sign_out(session_id: object) -> bool:
    """End the staff session ``session_id`` (logout); whether a live one was ended."""
    return await unit_of_work.run(lambda db: staff.end_staff_session(db, session_id))


async def staff_of_session(session_id: object) -> StaffIdentity | None:
    """The active staff account (id, username) of a live staff session id; None for anything
    else (unknown, expired, ended, its account deactivated, not a string)."""
    return await unit_of_work.run(lambda db: staff.staff_of_session(db, session_id))


# --- actions (each audited in its own transaction) --------------------------------------------


async def deactivate_user(user_id: int, actor: StaffActor) -> bool:
    """Deactivate user ``user_id`` and end all their sessions (audited: ``user.deactivate``).

    False (nothing written) for an unknown user.
    """
    return await unit_of_work.run(lambda db: users.set_user_active(db, user_id, False, actor=actor))


async def reactivate_user(user_id: int, actor: StaffActor) -> bool:
    """Let user ``user_id`` sign in again (audited: ``user.reactivate``); their old sessions
    stay ended. False (nothing written) for an unknown user."""
    return await unit_of_work.run(lambda db: users.set_user_active(db, user_id, True, actor=actor))


async def revoke_session(session_pk: int, actor: StaffActor) -> bool:
    """End the user session with id ``session_pk`` at once (audited: ``session.revoke``).

    False (nothing written) when no live session has that id.
    """
    return await unit_of_work.run(lambda db: sessions.revoke_session_by_id(db, session_pk, actor=actor))


# --- what the console shows -----------------------------------------------------------------


async def dashboard() -> Dashboard:
    """The dashboard's numbers now: totals, sign-ups and activations per UTC day (30 days),
    the top 10 inviters."""
    return await unit_of_work.run(lambda db: insights.dashboard(db, utcnow()))


async def webhook_attempts(event_pk: int) -> list[Attempt]:
    """The delivery attempts of webhook event ``event_pk``, newest first (at most 50)."""
    return await unit_of_work.read(lambda db: webhooks.recent_attempts(db, event_pk))


async def export_users(actor: StaffActor) -> AsyncIterator[list[tuple]]:
    """Every user, as chunks of rows of ``insights.USER_COLUMNS`` by id (1,000 rows a chunk,
    each read in a worker thread when the caller asks for it).

    The audit log entry (``export.users``, with the number of rows) is committed before this
    returns, so before the first row leaves.
    """
    await _record_export(actor, audit.EXPORT_USERS)
    return unit_of_work.stream(insights.export_users)


async def export_referrals(actor: StaffActor) -> AsyncIterator[list[tuple]]:
    """Every activation (who entered whose code, when), as chunks of rows of
    ``insights.REFERRAL_COLUMNS``; audited first (``export.referrals``), as :func:`export_users`."""
    await _record_export(actor, audit.EXPORT_REFERRALS)
    return unit_of_work.stream(insights.export_referrals)


async def _record_export(actor: StaffActor, action: str) -> int:
    return await unit_of_work.run(lambda db: insights.record_export(db, actor, action, utcnow()))


# --- staff accounts (the command line) --------------------------------------------------------


async def create_staff(username: str, password: str) -> StaffIdentity:
    """Create an active staff account; returns its id and username.

    Raises ``InvalidUsername`` (3-64 of ``A-Z a-z 0-9 _ . @ -``), ``WeakPassword`` (10 characters
    to 72 bytes) or ``UsernameTaken``.
    """

    def work(db) -> StaffIdentity:
        account = staff.create_staff(db, username, password)
        return StaffIdentity(id=account.id, username=account.username)

    return await unit_of_work.run(work)


async def deactivate_staff(username: str) -> None:
    """Deactivate a staff account and end all its staff sessions at once; ``UnknownStaff`` if none."""
    await unit_of_work.run(lambda db: staff.set_staff_active(db, username, False))


async def reactivate_staff(username: str) -> None:
    """Let a deactivated staff account sign in again; ``UnknownStaff`` if none."""
    await unit_of_work.run(lambda db: staff.set_staff_active(db, username, True))
