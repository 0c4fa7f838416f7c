"""Database tables. Each rule that two requests could race is backed by a constraint here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

# E.164 allows at most 15 digits after the "+".
PHONE_MAX_LENGTH = 16
INVITE_CODE_LENGTH = 6
HASH_LENGTH = 64  # hex SHA-256 / HMAC-SHA256


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
