"""Database tables. Each rule that two requests could race is backed by a constraint here."""

from datetime import datetime
from typing import Optional

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Integer, Text, true
from sqlmodel import Field, Relationship, SQLModel

# E.164 allows at most 15 digits after the "+".
PHONE_MAX_LENGTH = 16
INVITE_CODE_LENGTH = 6
HASH_LENGTH = 64  # hex SHA-256 / HMAC-SHA256
LANGUAGE_MAX_LENGTH = 8


class User(SQLModel, table=True):
    """A person who signed in at least once; created by the first sign-in of a phone."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("invited_by_id IS NULL OR invited_by_id <> id", name="ck_users_no_self_referral"),
        CheckConstraint(
            "(invited_by_id IS NULL) = (activated_at IS NULL)", name="ck_users_activation_complete"
        ),
        CheckConstraint("invited_count >= 0", name="ck_users_invited_count_non_negative"),
        # Keyset pagination of a user's referrals, newest first.
        Index("ix_users_referrals", "invited_by_id", "activated_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    phone_number: str = Field(max_length=PHONE_MAX_LENGTH, unique=True)
    invite_code: str = Field(max_length=INVITE_CODE_LENGTH, unique=True)
    # One column, so "activate once" is a single conditional UPDATE.
    invited_by_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="RESTRICT"), nullable=True),
    )
    activated_at: datetime | None = Field(default=None)
    invited_count: int = Field(default=0)
    created_at: datetime
    # Staff can deactivate a user: no sign-in, and their sessions stop working.
    is_active: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    # The language the person chose (a catalogue's name, e.g. "ru"); None: never chose one.
    language: str | None = Field(default=None, max_length=LANGUAGE_MAX_LENGTH)

    # For the admin views only; the domain layer queries columns, never these.
    invited_by: Optional["User"] = Relationship(
        sa_relationship_kwargs={"remote_side": "User.id", "foreign_keys": "User.invited_by_id", "lazy": "select"}
    )

    def __str__(self) -> str:
        return f"{self.phone_number} ({self.invite_code})"


class ConfirmationCode(SQLModel, table=True):
    """The live one-time code of a phone; a new request replaces it (one row per phone)."""

    __tablename__ = "confirmation_codes"
    __table_args__ = (CheckConstraint("attempts >= 0", name="ck_confirmation_codes_attempts"),)

    id: int | None = Field(default=None, primary_key=True)
    phone_number: str = Field(max_length=PHONE_MAX_LENGTH, unique=True)
    code_hash: str = Field(max_length=HASH_LENGTH)
    attempts: int = Field(default=0)
    created_at: datetime
    expires_at: datetime = Field(index=True)


class AuthSession(SQLModel, table=True):
    """A signed-in session: only the token's hash is kept.

    A browser session starts with a one-time claim (``claim_hash``) that the browser
    trades for an HttpOnly cookie, so the token never passes through page state.
    """

    __tablename__ = "auth_sessions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    token_hash: str = Field(max_length=HASH_LENGTH, unique=True)
    claim_hash: str | None = Field(default=None, max_length=HASH_LENGTH, unique=True)
    claim_expires_at: datetime | None = Field(default=None)
    created_at: datetime
    expires_at: datetime = Field(index=True)
    revoked_at: datetime | None = Field(default=None)

    user: User = Relationship()  # for the admin views


class CodeSend(SQLModel, table=True):
    """One code sent: the log that the send limits count (per phone and per client IP)."""

    __tablename__ = "code_sends"
    __table_args__ = (
        Index("ix_code_sends_phone_time", "phone_number", "sent_at"),
        Index("ix_code_sends_ip_time", "client_ip", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    phone_number: str = Field(max_length=PHONE_MAX_LENGTH)
    client_ip: str = Field(max_length=45)  # the longest IPv6 text form
    sent_at: datetime


class StaffAccount(SQLModel, table=True):
    """A person who may open /admin. Created only by ``python -m referral_app create-admin``."""

    __tablename__ = "staff_accounts"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=60)  # bcrypt
    is_active: bool = Field(default=True)
    created_at: datetime
    last_login_at: datetime | None = Field(default=None)


class StaffLoginFailure(SQLModel, table=True):
    """A failed admin login, counted for the lockout (per username and per client IP)."""

    __tablename__ = "staff_login_failures"
    __table_args__ = (
        Index("ix_staff_login_failures_username_time", "username", "failed_at"),
        Index("ix_staff_login_failures_ip_time", "client_ip", "failed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64)
    client_ip: str = Field(max_length=45)
    failed_at: datetime


# --- Webhooks (outbox) and the staff audit log ------------------------------------------

class WebhookEvent(SQLModel, table=True):
    """The outbox: one event, written in the transaction of the change that caused it.

    ``payload`` is the exact JSON body that is signed and sent. An event of ``user_id``
    (and of ``inviter_id``, when it names one) waits for every earlier pending event of
    either user: events reach the receiver in order per user. ``next_attempt_at`` is both
    the retry schedule and the lease: a claim moves it past the delivery's timeout, so a
    worker that dies mid-delivery leaves the event to the next one once it passes.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name="ck_webhook_events_status"
        ),
        CheckConstraint("attempts >= 0", name="ck_webhook_events_attempts"),
        Index("ix_webhook_events_due", "status", "next_attempt_at"),
        Index("ix_webhook_events_user", "user_id", "id"),
        Index("ix_webhook_events_inviter", "inviter_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=40, unique=True)  # the webhook-id header
    event_type: str = Field(max_length=32)
    user_id: int
    inviter_id: int | None = Field(default=None)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    created_at: datetime
    next_attempt_at: datetime
    retry_until: datetime
    delivered_at: datetime | None = Field(default=None)
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None, max_length=500)

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class WebhookAttempt(SQLModel, table=True):
    """One try to deliver an event: the HTTP status (None if no answer), how long, what went wrong."""

    __tablename__ = "webhook_attempts"

    id: int | None = Field(default=None, primary_key=True)
    webhook_event_id: int = Field(
        sa_column=Column(Integer, ForeignKey("webhook_events.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    attempt: int
    attempted_at: datetime
    status_code: int | None = Field(default=None)
    duration_ms: int
    error: str | None = Field(default=None, max_length=500)


class StaffAction(SQLModel, table=True):
    """The audit log: one row per staff action and target. Written in the action's own
    transaction; nothing in the app updates or deletes it."""

    __tablename__ = "staff_actions"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(
        sa_column=Column(Integer, ForeignKey("staff_accounts.id", ondelete="RESTRICT"), nullable=False, index=True)
    )
    action: str = Field(max_length=32)
    target_type: str = Field(max_length=32)
    target_id: int
    client_ip: str = Field(max_length=45)
    created_at: datetime = Field(index=True)

    staff: StaffAccount = Relationship()  # for the admin views


# The admin dashboard's reads (sign-ups and activations per day, top inviters, codes sent
# today) each walk one of these instead of the whole table.
Index("ix_users_created_at", User.__table__.c.created_at)
Index("ix_users_activated_at", User.__table__.c.activated_at)
Index("ix_users_invited_count", User.__table__.c.invited_count, User.__table__.c.id)
Index("ix_code_sends_sent_at", CodeSend.__table__.c.sent_at)
# --- Staff sessions (issue 10) ---


class StaffSession(SQLModel, table=True):
    """A signed-in admin session, kept on the server so that logout and deactivation end it.

    The cookie holds a random session id; only its SHA-256 is stored.
    """

    __tablename__ = "staff_sessions"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(
        sa_column=Column(Integer, ForeignKey("staff_accounts.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    session_hash: str = Field(max_length=HASH_LENGTH, unique=True)
    created_at: datetime
    expires_at: datetime = Field(index=True)
    revoked_at: datetime | None = Field(default=None)
