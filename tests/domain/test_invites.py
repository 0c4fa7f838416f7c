"""Invite codes: 6 characters without look-alikes; typed input is case- and separator-insensitive."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from referral_app.domain import invites
from referral_app.domain.errors import InvalidInput, InvalidInviteCode, InviteCodeRequired
from referral_app.domain.invites import ALPHABET, generate_invite_code, normalize_invite_code


def test_alphabet_has_no_look_alikes():
    assert ALPHABET == "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # SPEC.md section 3, "Invite codes"
    assert not set("01OI") & set(ALPHABET)


def test_letter_l_is_part_of_the_alphabet():
    """The spec's alphabet drops 0/O and 1/I but keeps L (1 is gone, so L reads unambiguously)."""
    assert normalize_invite_code("7kq2ml") == "7KQ2ML"


def test_generated_codes_are_six_characters_of_the_alphabet():
    generated = [generate_invite_code() for _ in range(2000)]
    assert all(re.fullmatch(f"[{ALPHABET}]{{6}}", code) for code in generated)
    assert len(set(generated)) == len(generated)  # 32**6 ≈ 10**9 codes: a repeat means a broken generator
    # Every character of the alphabet turns up (12,000 draws from 32 symbols), and none dominates.
    counts = Counter("".join(generated))
    assert set(counts) == set(ALPHABET)
    assert max(counts.values()) < 2 * min(counts.values())


def test_generated_codes_come_from_secrets(monkeypatch):
    monkeypatch.setattr(invites.secrets, "choice", lambda alphabet: alphabet[-1])
    assert generate_invite_code() == "ZZZZZZ"


@pytest.mark.parametrize(
    "raw",
    [
        "7KQ2MX",
        "7kq2mx",
        " 7kq-2mx ",
        "7Kq 2mX",
        "7KQ-2MX",
        "7-k-q-2-m-x",
        "\t7kq2mx\n",
        "7kq\u00a02mx",  # no-break space from a copy-paste
        "--7kq--2mx--",
    ],
)
def test_input_is_case_insensitive_and_ignores_spaces_and_dashes(raw):
    assert normalize_invite_code(raw) == "7KQ2MX"


BAD_INVITE_CODES = [
    ("", InviteCodeRequired),
    ("   ", InviteCodeRequired),
    (" - - ", InviteCodeRequired),
    ("7KQ2MO", InvalidInviteCode),  # O looks like 0
    ("7KQ2M0", InvalidInviteCode),
    ("7KQ2M1", InvalidInviteCode),  # 1 looks like I
    ("7KQ2MI", InvalidInviteCode),
    ("7kq2mo", InvalidInviteCode),
    ("7kq2mi", InvalidInviteCode),
    ("7kq2m0", InvalidInviteCode),
    ("7KQ2M", InvalidInviteCode),  # too short
    ("7KQ2MXX", InvalidInviteCode),  # too long
    ("7", InvalidInviteCode),
    ("7KQ_2MX", InvalidInviteCode),
    ("7KQ.2MX", InvalidInviteCode),
    ("7КQ2МХ", InvalidInviteCode),  # Cyrillic К, М, Х
    ("７KQ2MX", InvalidInviteCode),  # full-width 7
    ("7KQ2M😀", InvalidInviteCode),
    ("😀😀😀😀😀😀", InvalidInviteCode),
    ("' OR 1=1 --", InvalidInviteCode),
    ("7KQ2MX'; DROP TABLE users;--", InvalidInviteCode),
    ("%", InvalidInviteCode),
    ("7KQ2M%", InvalidInviteCode),  # a LIKE wildcard
    ("A" * 10_000, InvalidInviteCode),  # 10 kB
    (" " * 10_000, InvalidInviteCode),
    ("7KQ2MX\x00", InvalidInviteCode),
    (None, InvalidInviteCode),
    (123456, InvalidInviteCode),
    (True, InvalidInviteCode),
    (b"7KQ2MX", InvalidInviteCode),
    (["7KQ2MX"], InvalidInviteCode),
    ({"invite_code": "7KQ2MX"}, InvalidInviteCode),
]


@pytest.mark.parametrize(("raw", "error"), BAD_INVITE_CODES, ids=lambda value: repr(value)[:30])
def test_bad_input_is_a_typed_field_error(raw, error):
    with pytest.raises(InvalidInput) as caught:
        normalize_invite_code(raw)
    assert type(caught.value) is error
    assert caught.value.field == "invite_code"
