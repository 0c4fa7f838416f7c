"""Phone numbers: parsed with ``phonenumbers``, stored in E.164, bad input is a field error."""

from __future__ import annotations

import pytest
from sqlmodel import select

from referral_app.domain import auth
from referral_app.domain.errors import InvalidInput, InvalidPhone, PhoneRequired
from referral_app.domain.phones import normalize_phone
from referral_app.models import User
from referral_app.settings import settings
from tests.domain.helpers import TEST_IP, snapshot

E164 = "+79123456789"


@pytest.mark.parametrize(
    "raw",
    [
        "+79123456789",
        "+7 912 345 67 89",
        "+7 (912) 345-67-89",
        "8 912 345-67-89",
        "89123456789",
        "8 (912) 345 67 89",
        "912 345 67 89",
        "  +7-912-345-67-89  ",
        "+7.912.345.67.89",
        "+7\u00a0912\u00a0345\u00a067\u00a089",  # no-break spaces from a copy-paste
    ],
)
def test_output_is_e164(raw):
    assert normalize_phone(raw) == E164


def test_national_and_international_forms_are_the_same_number():
    assert normalize_phone("8 912 345-67-89") == normalize_phone("+7 (912) 345-67-89") == E164


def test_other_countries_with_plus_are_kept():
    assert normalize_phone("+1 202 555 0100") == "+12025550100"
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"


def test_default_region_is_a_setting(monkeypatch):
    assert normalize_phone("(202) 555-0100", region="US") == "+12025550100"
    monkeypatch.setattr(settings, "default_region", "US")
    assert normalize_phone("(202) 555-0100") == "+12025550100"


def test_default_region_is_ru_by_default():
    assert settings.default_region == "RU"


def test_both_forms_sign_in_as_the_same_user(db, sms, sign_up):
    first = sign_up("8 912 345-67-89")
    second = sign_up("+7 (912) 345-67-89")
    assert first.id == second.id
    assert first.phone_number == E164
    assert len(db.exec(select(User)).all()) == 1
    assert [number for number, _text in sms.outbox] == [E164, E164]


BAD_PHONES = [
    # (input, error)
    ("", PhoneRequired),
    ("   ", PhoneRequired),
    ("\t\n", PhoneRequired),
    (None, InvalidPhone),  # not a string at all (e.g. JSON null): a format error, as for codes and invite codes
    (79123456789, InvalidPhone),
    (7.9e10, InvalidPhone),
    (b"+79123456789", InvalidPhone),
    (["+79123456789"], InvalidPhone),
    ({"phone": "+79123456789"}, InvalidPhone),
    (True, InvalidPhone),
    ("abc", InvalidPhone),
    ("phone", InvalidPhone),
    ("+", InvalidPhone),
    ("123", InvalidPhone),
    ("+7912345678", InvalidPhone),  # one digit short
    ("+791234567890", InvalidPhone),  # one digit too many
    ("+7 000 000 00 00", InvalidPhone),  # impossible: no such Russian number range
    ("0000000000", InvalidPhone),
    ("+999 123 456 789", InvalidPhone),  # no such country code
    ("+79123456789 +79000000000", InvalidPhone),  # two numbers
    ("1" * 33, InvalidPhone),  # longer than any phone number
    ("+7" + "9" * 40, InvalidPhone),
    ("8" * 10_000, InvalidPhone),  # 10 kB
    ("x" * 10_000, InvalidPhone),
    ("📞📞📞", InvalidPhone),
    ("+79123456789😀", InvalidPhone),  # the parser would drop the emoji and accept the rest
    ("😀+79123456789", InvalidPhone),
    ("+7 912 ABC-DE-FG", InvalidPhone),  # letters must not be read as a phone keypad
    ("+7 912 FLOWERS", InvalidPhone),
    ("89123456789x", InvalidPhone),
    ("+7 912 345 67 89 ext 12", InvalidPhone),
    ("tel:+7-912-345-67-89", InvalidPhone),
    ("'; DROP TABLE users;--", InvalidPhone),
    ("+79123456789'; DROP TABLE users;--", InvalidPhone),
    ("1 OR 1=1", InvalidPhone),
    ("+7 912 345 67 8\u00b2", InvalidPhone),  # superscript two is not a digit
    ("+7912345\x006789", InvalidPhone),  # NUL byte
]


@pytest.mark.parametrize(("raw", "error"), BAD_PHONES, ids=lambda value: repr(value)[:30])
def test_bad_input_is_a_typed_field_error(raw, error):
    with pytest.raises(InvalidInput) as caught:
        normalize_phone(raw)
    assert type(caught.value) is error
    assert caught.value.field == "phone_number"


@pytest.mark.parametrize(("raw", "error"), BAD_PHONES, ids=lambda value: repr(value)[:30])
def test_bad_phone_requests_no_code_and_changes_nothing(db, sms, raw, error):
    before = snapshot(db)
    with pytest.raises(error):
        auth.request_code(db, raw, TEST_IP)
    with pytest.raises(error):
        auth.sign_in(db, raw, "1234")
    assert snapshot(db) == before
    assert list(sms.outbox) == []


# --- Shown to people (SPEC §3) ---------------------------------------------------------

from referral_app.domain.phones import format_phone, mask_phone  # noqa: E402


@pytest.mark.parametrize(
    ("e164", "formatted", "masked"),
    [
        ("+79123456789", "+7 912 345-67-89", "+7 *** ***-67-89"),
        ("+77011234567", "+7 701 123 4567", "+7 *** *** 4567"),
        ("+12125550123", "+1 212-555-0123", "+1 ***-***-0123"),
        ("+447911123456", "+44 7911 123456", "+44 **** **3456"),
    ],
)
def test_numbers_are_shown_formatted_and_other_peoples_masked(e164, formatted, masked):
    assert format_phone(e164) == formatted
    assert mask_phone(e164) == masked
    assert sum(char.isdigit() for char in masked) == len(str(phonenumbers_country(e164))) + 4


def phonenumbers_country(e164: str) -> int:
    import phonenumbers

    return phonenumbers.parse(e164, None).country_code


@pytest.mark.parametrize("junk", ["", "junk", "+", "12345"])
def test_masking_text_that_is_no_number_shows_no_digit(junk):
    assert not any(char.isdigit() for char in mask_phone(junk))
