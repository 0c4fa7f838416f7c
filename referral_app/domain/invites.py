"""Invite codes: generation and normalisation of what people type."""

from __future__ import annotations

import re
import secrets
from typing import Any

from referral_app.domain.errors import InvalidInviteCode, InviteCodeRequired

# No 0/O, 1/I/L: nothing that reads as something else.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
LENGTH = 6
_VALID = re.compile(f"[{ALPHABET}]{{{LENGTH}}}")
_IGNORED = re.compile(r"[\s\-]+")
# Anything longer than this cannot become a code by dropping spaces and dashes sensibly.
MAX_INPUT_LENGTH = 32


def generate_invite_code() -> str:
    """A fresh random code; uniqueness is the database's job (callers retry on collision)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalize_invite_code(raw: Any) -> str:
    """Upper-case ``raw`` and drop spaces and dashes; raise a field error if it is not a code."""
    if not isinstance(raw, str):
        raise InvalidInviteCode()
    if len(raw) > MAX_INPUT_LENGTH:
        raise InvalidInviteCode()
    code = _IGNORED.sub("", raw).upper()
    if not code:
        raise InviteCodeRequired()
    if not _VALID.fullmatch(code):
        raise InvalidInviteCode()
    return code
