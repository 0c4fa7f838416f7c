"""Phone typography (SPEC §3): digits of any script, fullwidth digits and plus, any Unicode
dash, space or bracket are read as what they mean; spelling a number differently never makes
another user and never gets round a limit."""

from __future__ import annotations

import pytest
from sqlmodel import select

from referral_app.domain import auth
from referral_app.domain.errors import InvalidPhone, RateLimited
from referral_app.domain.phones import normalize_phone
from referral_app.models import CodeSend, User
from tests.domain.helpers import TEST_IP

E164 = "+79123456789"

SPELLINGS = [
    "＋７９１２３４５６７８９",  # fullwidth plus and digits (a Japanese or Chinese keyboard)
    "＋7 912 345 67 89",
    "+٧٩١٢٣٤٥٦٧٨٩",  # Arabic-Indic digits
    "+۷۹۱۲۳۴۵۶۷۸۹",  # Extended Arabic-Indic (Persian) digits
    "+७९१२३४५६७८९",  # Devanagari digits
    "+৭৯১২৩৪৫৬৭৮৯",  # Bengali digits
    "+7 912 345‒67‒89",  # figure dash
    "+7 912 345–67–89",  # en dash
    "+7 912 345—67—89",  # em dash
    "+7 912 345−67−89",  # minus sign
    "+7 912 345－67－89",  # fullwidth hyphen-minus
    "+7 912 345﹣67﹣89",  # small hyphen-minus
    "+7‐912‐345‐67‐89",  # hyphen
    "+7\u2009912\u2009345\u200967\u200989",  # thin spaces
    "+7\u202f912\u202f345\u202f67\u202f89",  # narrow no-break spaces
    "+7\u3000912\u30003456789",  # ideographic space
    "+7\u2007912\u20073456789",  # figure space
    "+7（912）345-67-89",  # fullwidth brackets
    "+7［912］3456789",
    "+7【912】3456789",
    "+7 {912} 345 67 89",
    "+7\u200b912\u200b3456789",  # zero-width spaces
    "\u202a+7 912 345 67 89\u202c",  # bidi embedding, as copied from right-to-left text
    "\u2066+79123456789\u2069",  # bidi isolate
    "\u200e+7 (912) 345-67-89",  # left-to-right mark
    "+7 912 345\u00ad67\u00ad89",  # soft hyphens
    "\ufeff+79123456789",  # a byte order mark pasted along
    "８ ９１２ ３４５－６７－８９",  # national form, fullwidth
    "８ (９１２) ３４５ ６７ ８９",
]


@pytest.mark.parametrize("raw", SPELLINGS)
def test_every_spelling_is_the_same_e164_number(raw):
    assert normalize_phone(raw) == E164


@pytest.mark.parametrize(
    "raw",
    [
        "+7 912 345 67 8\u00b2",  # superscript two: not a digit
        "+7 912 345 67 8\u2468",  # circled nine: not a digit
        "+7 912 345 67 8\u216b",  # roman numeral: not a digit
        "＋７９１２３４５６７８９０",  # one digit too many, however written
        "+٧٩١٢٣٤٥٦٧٨",  # one digit short
        "+7 912 345 67 89\u200b" + "\u200b" * 60,  # invisible marks still count toward the length
        "+7 912 ＡＢＣ 67 89",  # fullwidth letters are letters
        "+7 912 345 67 89\u0000",
        "+7 912 345 67 89 ✓",
    ],
)
def test_what_only_looks_like_a_number_is_refused(raw):
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_spellings_sign_in_as_one_user(db, sms):
    users = set()
    for raw in ["+79123456789", "＋７９１２３４５６７８９", "+٧٩١٢٣٤٥٦٧٨٩", "８ ９１２ ３４５－６７－８９"]:
        issued = auth.request_code(db, raw, TEST_IP)
        users.add(auth.sign_in(db, raw, issued.code).id)
    assert len(users) == 1
    assert db.exec(select(User.phone_number)).all() == [E164]


def test_a_spelling_never_gets_round_a_limit(db, sms, send_limits):
    auth.request_code(db, "+79123456789", TEST_IP)
    for raw in SPELLINGS[:5]:
        with pytest.raises(RateLimited):
            auth.request_code(db, raw, TEST_IP)
    assert db.exec(select(CodeSend.phone_number)).all() == [E164]
