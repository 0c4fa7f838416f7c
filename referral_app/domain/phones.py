"""Phone number parsing: any reasonable input in, E.164 out."""

from __future__ import annotations

from typing import Any

import phonenumbers

from referral_app.domain.errors import InvalidPhone, PhoneRequired
from referral_app.settings import settings

# Longer input is not a phone number; refuse before the parser sees it.
MAX_INPUT_LENGTH = 32
# Besides digits and spaces, what people type in a phone number. Anything else is refused
# before parsing: the parser would drop trailing junk ("+79123456789😀", "... ext 12") or
# read letters as a keypad ("+7 912 ABC-DE-FG"), giving a number the user did not type.
_PUNCTUATION = frozenset("+-().")


def normalize_phone(raw: Any, region: str | None = None) -> str:
    """Return ``raw`` as E.164 (``+79123456789``) or raise a field error.

    A number without ``+`` is read in ``region`` (default: the ``DEFAULT_REGION`` setting),
    so ``8 912 345-67-89`` and ``+7 (912) 345-67-89`` give the same result in ``RU``.
    """
    if not isinstance(raw, str):
        raise InvalidPhone()
    text = raw.strip()
    if not text:
        raise PhoneRequired()
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidPhone()
    if not all(char.isdecimal() or char.isspace() or char in _PUNCTUATION for char in text):
        raise InvalidPhone()
    try:
        number = phonenumbers.parse(text, region or settings.default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone() from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
