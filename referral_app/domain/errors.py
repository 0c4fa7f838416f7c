"""Typed domain errors. ``code`` is both the machine-readable error code and the message id."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class: a request broke a rule. ``params`` fill the message template."""

    code: str = "error.unknown"
    field: str | None = None

    def __init__(self, **params: Any) -> None:
        self.params = params
        super().__init__(self.code)


class InvalidInput(DomainError):
    """A field's value is malformed (HTTP 400, names the field)."""


class RuleViolation(DomainError):
    """The input is well formed but a rule forbids the action (HTTP 400)."""


class RateLimited(DomainError):
    """Too many requests; ``retry_after`` seconds until the next one is allowed (HTTP 429)."""

    code = "rate.limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(seconds=retry_after)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A service the request needs (the SMS gateway) failed or missed its deadline (HTTP 503).

    ``retry_after``: seconds after which a new try makes sense (the ``Retry-After`` header).
    """

    code = "sms.unavailable"

    def __init__(self, retry_after: int = 5, **params: Any) -> None:
        super().__init__(**params)
        self.retry_after = retry_after


class InvalidCredentials(DomainError):
    """Unknown username or wrong password: one answer for both."""

    code = "staff.invalid_credentials"


class StaffLockedOut(DomainError):
    code = "staff.locked_out"

    def __init__(self, retry_after: int) -> None:
        super().__init__(minutes=max(1, -(-retry_after // 60)))
        self.retry_after = retry_after


class AccountDisabled(RuleViolation):
    """The phone's account was deactivated by staff."""

    code, field = "auth.disabled", "phone_number"


class NotAuthenticated(DomainError):
    """Missing, unknown, expired or revoked session (HTTP 401)."""

    code = "auth.required"


# Phone numbers
class PhoneRequired(InvalidInput):
    code, field = "phone.required", "phone_number"


class InvalidPhone(InvalidInput):
    code, field = "phone.invalid", "phone_number"


# Confirmation codes
class CodeRequired(InvalidInput):
    code, field = "code.required", "confirmation_code"


class InvalidCodeFormat(InvalidInput):
    code, field = "code.format", "confirmation_code"


class WrongCode(RuleViolation):
    """Wrong, expired or missing code: one answer, so a guesser learns nothing."""

    code, field = "code.wrong", "confirmation_code"


class TooManyAttempts(RuleViolation):
    code, field = "code.too_many_attempts", "confirmation_code"


# Invite codes and activation
class InviteCodeRequired(InvalidInput):
    code, field = "invite.required", "invite_code"


class InvalidInviteCode(InvalidInput):
    code, field = "invite.format", "invite_code"


class UnknownInviteCode(RuleViolation):
    code, field = "invite.unknown", "invite_code"


class OwnInviteCode(RuleViolation):
    code, field = "invite.own", "invite_code"


class AlreadyActivated(RuleViolation):
    code, field = "invite.already_activated", "invite_code"


class InviteLoop(RuleViolation):
    code, field = "invite.loop", "invite_code"


class InvalidCursor(InvalidInput):
    code, field = "referrals.cursor", "cursor"


class InvalidLimit(InvalidInput):
    code, field = "referrals.limit", "limit"
