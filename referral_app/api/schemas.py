"""Request and response bodies of the REST API (the original task's contract)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

PHONE_EXAMPLE = "+79123456789"


class RequestCodeIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"phone_number": PHONE_EXAMPLE}]})

    phone_number: str = Field(description="Any common spelling; numbers without + are read in DEFAULT_REGION.")


class RequestCodeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"confirmation_code": "1234", "expires_in": 300}]})

    confirmation_code: str | None = Field(
        default=None, description="The code itself: present only in demo mode (otherwise it goes by SMS only)."
    )
    expires_in: int = Field(description="Seconds until the code expires.")


class AuthCodeIn(BaseModel):
    # The original service's clients send the code as a JSON number: accept it.
    model_config = ConfigDict(
        coerce_numbers_to_str=True,
        json_schema_extra={"examples": [{"phone_number": PHONE_EXAMPLE, "confirmation_code": "1234"}]},
    )

    phone_number: str
    confirmation_code: str = Field(description="A string; a JSON number is accepted too, as the original API did.")


class TokenOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"token": "pX1s9kq0c2f8Vb7dT3mN4rL6hY5wE1aZjQ8uK0oI2gS"}]})

    token: str = Field(description="Send it as `Authorization: Bearer <token>` (or `Token <token>`).")


class ReferralOut(BaseModel):
    phone_number: str
    activated_at: datetime = Field(description="When this user entered your code (UTC).")


class ReferralPageOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"items": [{"phone_number": "+79123456780", "activated_at": "2026-11-26T12:00:00Z"}], "next_cursor": None}
            ]
        }
    )

    items: list[ReferralOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class ProfileOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "phone_number": PHONE_EXAMPLE,
                    "invite_code": "7KQ2MX",
                    "activated_invite_code": "H4W9PA",
                    "invited_by": "+79123456700",
                    "invited_count": 1,
                    "invited_users": [{"phone_number": "+79123456780", "activated_at": "2026-11-26T12:00:00Z"}],
                    "next_cursor": None,
                }
            ]
        }
    )

    phone_number: str
    invite_code: str = Field(description="Your own invite code, to share.")
    activated_invite_code: str | None = Field(description="The code you entered, if any.")
    invited_by: str | None = Field(description="Phone number of the owner of the code you entered.")
    invited_count: int = Field(description="How many users entered your code.")
    invited_users: list[ReferralOut] = Field(description="First page of those users, newest first.")
    next_cursor: str | None = Field(description="Cursor for /profile/me/referrals/; null if this is everything.")


class ActivateInviteIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"invite_code": "7KQ2MX"}]})

    invite_code: str = Field(description="Case-insensitive; spaces and dashes are ignored.")


class ActivateInviteOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"message": "Invite code 7KQ2MX activated.", "invited_by": "+79123456700"}]}
    )

    message: str
    invited_by: str


class ErrorOut(BaseModel):
    """Every error of the API has this shape."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"code": "phone.invalid", "message": "This is not a valid phone number.", "field": "phone_number"}]
        }
    )

    code: str = Field(description="Machine-readable error code (stable).")
    message: str = Field(description="Human-readable message.")
    field: str | None = Field(default=None, description="The request field at fault, for field errors.")
