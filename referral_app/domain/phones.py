"""Phone number parsing: any reasonable input in, E.164 out."""

from __future__ import annotations

import unicodedata
from typing import Any

import phonenumbers

from referral_app.domain.errors import InvalidPhone, PhoneRequired
from referral_app.settings import settings

# Longer input is not a phone number; refuse before the parser sees it (what is left once
# the typography is read, and the raw text, which may carry invisible marks).
MAX_INPUT_LENGTH = 32
MAX_RAW_LENGTH = 64
# SPEC §3: typographic variants are read as what they mean. Anything else is refused before
# parsing: the parser would drop trailing junk ("+79123456789😀", "... ext 12") or read
# letters as a keypad ("+7 912 ABC-DE-FG"), giving a number the user did not type.
_PLUS = frozenset("+\uff0b\ufe62")  # plus, fullwidth plus, small plus
_MINUS = frozenset("\u2212\u2796\u02d7\u2043")  # minus sign, heavy minus, modifier minus, hyphen bullet
_DOTS = frozenset(".\uff0e")


def _read_char(char: str) -> str | None:
    """What one character of a typed phone number means: a digit, ``+``, ``-``, a space,
    a bracket, a dot, nothing (an invisible format mark), or None (not part of a number)."""
    if char.isdecimal():  # a digit of any script: Arabic-Indic, Devanagari, fullwidth, ...
        return str(unicodedata.decimal(char))
    if char in _PLUS:
        return "+"
    category = unicodedata.category(char)
    if category == "Pd" or char in _MINUS:  # every dash: en, em, figure, fullwidth, small...
        return "-"
    if char.isspace() or category == "Zs":  # no-break, thin, ideographic spaces, tabs
        return " "
    if category == "Cf":  # zero-width spaces, bidi marks, soft hyphens: copied along, never seen
        return ""
    if category == "Ps":
        return "("
    if category == "Pe":
        return ")"
    if char in _DOTS:
        return "."
    return None


def read_typography(raw: str) -> str | None:
    """``raw`` with each character read as what it means (see :func:`_read_char`), or None."""
    read = [_read_char(char) for char in raw]
    return None if None in read else "".join(read)  # type: ignore[arg-type]


def normalize_phone(raw: Any, region: str | None = None) -> str:
    """Return ``raw`` as E.164 (``+79123456789``) or raise a field error.

    A number without ``+`` is read in ``region`` (default: the ``DEFAULT_REGION`` setting),
    so ``8 912 345-67-89`` and ``+7 (912) 345-67-89`` give the same result in ``RU``, and
    so do ``＋７ ９１２…`` (fullwidth), ``+٧٩١٢…`` (Arabic-Indic digits) and any dash, space
    or bracket between the digits (SPEC §3): one number, one user, one set of limits.
    """
    if not isinstance(raw, str):
        raise InvalidPhone()
    if len(raw) > MAX_RAW_LENGTH:
        raise InvalidPhone()
    text = read_typography(raw)
    if text is None:
        raise InvalidPhone()
    text = text.strip()
    if not text:
        raise PhoneRequired()
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidPhone()
    try:
        number = phonenumbers.parse(text, region or settings.default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone() from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- Showing numbers to people (SPEC §3) ---------------------------------------------

def _parsed(e164: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None


def format_phone(e164: str) -> str:
    """A stored E.164 number as people write it: the international format of
    libphonenumber (``+79123456789`` → ``+7 912 345-67-89``). Unparsable text is returned as is."""
    number = _parsed(e164)
    if number is None:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


# Digits of someone else's number that stay visible: the last ones (SPEC §3).
VISIBLE_DIGITS = 4


def mask_phone(e164: str) -> str:
    """Someone else's number for the UI: the country code and the last four digits only,
    in the international format (``+79123456789`` → ``+7 *** ***-67-89``)."""
    number = _parsed(e164)
    if number is None:
        return "*" * len(e164)
    formatted = format_phone(e164)
    prefix = f"+{number.country_code}"
    rest = formatted[len(prefix):]
    digits_left = sum(char.isdigit() for char in rest)
    masked = []
    for char in rest:
        if char.isdigit():
            masked.append(char if digits_left <= VISIBLE_DIGITS else "*")
            digits_left -= 1
        else:
            masked.append(char)
    return prefix + "".join(masked)


def keep_together(shown: str) -> str:
    """A number written in running text that never breaks across lines (no-break spaces
    and hyphens, U+00A0 and U+2011)."""
    return shown.replace(" ", "\u00a0").replace("-", "\u2011")
