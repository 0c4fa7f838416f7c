"""Confirmation codes: random digits, stored as a keyed hash, single use, 5 minutes, 5 attempts."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from datetime import timedelta

import pytest
from sqlmodel import select

from referral_app.domain import auth, codes
from referral_app.domain.errors import (
    CodeRequired,
    InvalidCodeFormat,
    InvalidInput,
    TooManyAttempts,
    WrongCode,
)
from referral_app.models import ConfirmationCode, User
from referral_app.settings import settings
from tests.domain.helpers import TEST_IP, T0, phone, rows_of, snapshot

PHONE = phone(1)


def other_code(code: str) -> str:
    """A well-formed code of the same length that is not ``code``."""
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def attempts(db, phone_number: str = PHONE) -> int | None:
    value = db.exec(select(ConfirmationCode.attempts).where(ConfirmationCode.phone_number == phone_number)).first()
    db.rollback()
    return value


def user_count(db) -> int:
    count = len(db.exec(select(User)).all())
    db.rollback()
    return count


# --- generation ---------------------------------------------------------------------------


def test_code_is_four_digits_by_default(db, sms):
    assert settings.code_length == 4
    for _ in range(20):
        issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
        assert re.fullmatch(r"[0-9]{4}", issued.code)


def test_code_length_is_a_setting(db, sms, monkeypatch):
    monkeypatch.setattr(settings, "code_length", 6)
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    assert re.fullmatch(r"[0-9]{6}", issued.code)
    with pytest.raises(InvalidCodeFormat) as caught:
        auth.sign_in(db, PHONE, issued.code[:4], now=T0)
    assert caught.value.params == {"length": 6}
    assert auth.sign_in(db, PHONE, issued.code, now=T0).phone_number == PHONE


def test_codes_are_random_and_never_start_with_zero(monkeypatch):
    generated = [codes.generate_code() for _ in range(2000)]
    assert all(re.fullmatch(r"[1-9][0-9]{3}", code) for code in generated)
    # 2000 draws from 9,000 codes give ~1,794 distinct values; a fixed or biased generator far fewer.
    assert len(set(generated)) > 1600
    monkeypatch.setattr(codes.secrets, "randbelow", lambda bound: 0)
    assert codes.generate_code() == "1000"
    monkeypatch.setattr(codes.secrets, "randbelow", lambda bound: bound - 1)
    assert codes.generate_code() == "9999"


def test_code_is_handed_to_the_sms_sender(db, sms):
    issued = auth.request_code(db, "8 912 000-00-01", TEST_IP, now=T0)
    asyncio.run(auth.send_code(issued, sms))
    assert issued.phone_number == PHONE
    assert issued.ttl_seconds == 300
    assert issued.expires_at == T0 + timedelta(minutes=5)
    [(to, text)] = sms.outbox
    assert to == PHONE
    assert issued.code in text


def test_request_does_not_create_a_user(db, sms):
    auth.request_code(db, PHONE, TEST_IP, now=T0)
    assert user_count(db) == 0


def test_request_answer_does_not_reveal_an_account(db, sms, sign_up):
    sign_up(phone(2), now=T0)
    new = auth.request_code(db, PHONE, TEST_IP, now=T0)
    existing = auth.request_code(db, phone(2), TEST_IP, now=T0)
    for issued in (new, existing):
        asyncio.run(auth.send_code(issued, sms))
    assert (new.ttl_seconds, new.expires_at) == (existing.ttl_seconds, existing.expires_at)
    texts = [text.replace(code, "<code>") for (_, text), code in zip(list(sms.outbox)[-2:], [new.code, existing.code])]
    assert texts[0] == texts[1]


# --- storage ------------------------------------------------------------------------------


def test_code_is_stored_only_as_a_keyed_hash(db, sms, monkeypatch):
    # Eight digits, so the plain code cannot turn up in the row by chance.
    monkeypatch.setattr(settings, "code_length", 8)
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    [row] = rows_of(db, "confirmation_codes")
    for column, value in row.items():
        assert issued.code not in str(value), column
    expected = hmac.new(settings.secret_key.encode(), f"{PHONE}:{issued.code}".encode(), hashlib.sha256).hexdigest()
    assert row["code_hash"] == expected
    # Keyed: a plain hash of the code (what a thief of the table could brute-force) is not stored.
    assert row["code_hash"] != hashlib.sha256(issued.code.encode()).hexdigest()
    assert row["code_hash"] != hashlib.sha256(f"{PHONE}:{issued.code}".encode()).hexdigest()


def test_hash_depends_on_the_server_secret(monkeypatch):
    before = codes.hash_code(PHONE, "1234")
    monkeypatch.setattr(settings, "secret_key", "another-secret")
    assert codes.hash_code(PHONE, "1234") != before


def test_code_is_not_logged_outside_demo_mode(db, sms, monkeypatch, caplog):
    monkeypatch.setattr(settings, "code_length", 8)
    monkeypatch.setattr(settings, "demo_mode", False)
    caplog.set_level(logging.DEBUG)
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    asyncio.run(auth.send_code(issued, sms))
    auth.sign_in(db, PHONE, issued.code, now=T0)
    assert issued.code not in caplog.text
    assert issued.code in sms.outbox[0][1]  # the sender still gets it


def test_code_is_compared_in_constant_time(db, sms, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(codes.hmac, "compare_digest", spy)
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    with pytest.raises(WrongCode):
        auth.sign_in(db, PHONE, other_code(issued.code), now=T0)
    auth.sign_in(db, PHONE, issued.code, now=T0)
    assert len(calls) == 2


# --- single use, replacement --------------------------------------------------------------


def test_code_signs_in_once_only(db, sms):
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    user = auth.sign_in(db, PHONE, issued.code, now=T0)
    assert user.phone_number == PHONE
    assert rows_of(db, "confirmation_codes") == []
    with pytest.raises(WrongCode):
        auth.sign_in(db, PHONE, issued.code, now=T0)


def test_new_request_replaces_the_previous_code(db, sms):
    first = auth.request_code(db, PHONE, TEST_IP, now=T0)
    second = auth.request_code(db, PHONE, TEST_IP, now=T0 + timedelta(seconds=1))
    while second.code == first.code:  # 1 in 10,000: ask again until the codes differ
        second = auth.request_code(db, PHONE, TEST_IP, now=T0 + timedelta(seconds=1))
    rows = rows_of(db, "confirmation_codes")
    assert len(rows) == 1 and rows[0]["attempts"] == 0
    with pytest.raises(WrongCode):
        auth.sign_in(db, PHONE, first.code, now=T0 + timedelta(seconds=2))
    assert auth.sign_in(db, PHONE, second.code, now=T0 + timedelta(seconds=2)).phone_number == PHONE


def test_new_request_restarts_the_clock_and_the_attempts(db, sms):
    first = auth.request_code(db, PHONE, TEST_IP, now=T0)
    for _ in range(5):
        with pytest.raises((WrongCode, TooManyAttempts)):
            auth.sign_in(db, PHONE, other_code(first.code), now=T0)
    later = T0 + timedelta(minutes=4)
    second = auth.request_code(db, PHONE, TEST_IP, now=later)
    assert attempts(db) == 0
    # Valid for five minutes from the new request, not from the first one.
    user = auth.sign_in(db, PHONE, second.code, now=later + timedelta(minutes=4, seconds=59))
    assert user.phone_number == PHONE


def test_code_is_bound_to_its_phone(db, sms, monkeypatch):
    issued = iter(["1111", "2222"])
    monkeypatch.setattr(codes, "generate_code", lambda length=None: next(issued))
    auth.request_code(db, phone(1), TEST_IP, now=T0)
    auth.request_code(db, phone(2), TEST_IP, now=T0)
    with pytest.raises(WrongCode):
        auth.sign_in(db, phone(2), "1111", now=T0)
    assert auth.sign_in(db, phone(2), "2222", now=T0).phone_number == phone(2)


def test_no_code_requested_is_a_wrong_code(db):
    with pytest.raises(WrongCode):
        auth.sign_in(db, PHONE, "1234", now=T0)
    assert user_count(db) == 0


# --- expiry -------------------------------------------------------------------------------


@pytest.mark.parametrize("age", [timedelta(0), timedelta(minutes=4, seconds=59), timedelta(minutes=5) - timedelta(microseconds=1)])
def test_code_is_valid_for_five_minutes(db, sms, age):
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    assert auth.sign_in(db, PHONE, issued.code, now=T0 + age).phone_number == PHONE


@pytest.mark.parametrize("age", [timedelta(minutes=5), timedelta(minutes=5, microseconds=1), timedelta(hours=1), timedelta(days=400)])
def test_code_expires_after_five_minutes(db, sms, age):
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    with pytest.raises(WrongCode):
        auth.sign_in(db, PHONE, issued.code, now=T0 + age)
    assert user_count(db) == 0


def test_code_lifetime_is_a_setting(db, sms, monkeypatch):
    monkeypatch.setattr(settings, "code_ttl_seconds", 60)
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    assert issued.ttl_seconds == 60
    with pytest.raises(WrongCode):
        auth.sign_in(db, PHONE, issued.code, now=T0 + timedelta(seconds=60))
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    assert auth.sign_in(db, PHONE, issued.code, now=T0 + timedelta(seconds=59)).phone_number == PHONE


# --- attempts -----------------------------------------------------------------------------


def test_wrong_code_counts_one_attempt(db, sms):
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    with pytest.raises(WrongCode) as caught:
        auth.sign_in(db, PHONE, other_code(issued.code), now=T0)
    assert caught.value.field == "confirmation_code"
    assert attempts(db) == 1
    assert user_count(db) == 0


def test_fifth_wrong_attempt_kills_the_code(db, sms):
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    wrong = other_code(issued.code)
    for attempt in range(1, 5):
        with pytest.raises(WrongCode):
            auth.sign_in(db, PHONE, wrong, now=T0)
        assert attempts(db) == attempt
    with pytest.raises(TooManyAttempts):
        auth.sign_in(db, PHONE, wrong, now=T0)
    assert attempts(db) == 5
    # Dead: even the right code fails now, and further tries do not count.
    for guess in (issued.code, wrong, issued.code):
        with pytest.raises(TooManyAttempts):
            auth.sign_in(db, PHONE, guess, now=T0)
    assert attempts(db) == 5
    assert user_count(db) == 0


def test_right_code_on_the_fifth_attempt_still_signs_in(db, sms):
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    for _ in range(4):
        with pytest.raises(WrongCode):
            auth.sign_in(db, PHONE, other_code(issued.code), now=T0)
    assert auth.sign_in(db, PHONE, issued.code, now=T0).phone_number == PHONE


def test_max_attempts_is_a_setting(db, sms, monkeypatch):
    monkeypatch.setattr(settings, "code_max_attempts", 2)
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    with pytest.raises(WrongCode):
        auth.sign_in(db, PHONE, other_code(issued.code), now=T0)
    with pytest.raises(TooManyAttempts):
        auth.sign_in(db, PHONE, other_code(issued.code), now=T0)
    with pytest.raises(TooManyAttempts):
        auth.sign_in(db, PHONE, issued.code, now=T0)


def test_dead_code_can_be_replaced_by_a_new_request(db, sms):
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    for _ in range(5):
        with pytest.raises((WrongCode, TooManyAttempts)):
            auth.sign_in(db, PHONE, other_code(issued.code), now=T0)
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    assert auth.sign_in(db, PHONE, issued.code, now=T0).phone_number == PHONE


# --- malformed input ----------------------------------------------------------------------


def test_spaces_inside_a_code_are_ignored():
    assert codes.normalize_code(" 12 34 ") == "1234"
    assert codes.normalize_code("1\t2\n3 4") == "1234"


MALFORMED_CODES = [
    ("", CodeRequired),
    ("   ", CodeRequired),
    ("abcd", InvalidCodeFormat),
    ("12a4", InvalidCodeFormat),
    ("12-4", InvalidCodeFormat),
    ("-123", InvalidCodeFormat),
    ("+123", InvalidCodeFormat),
    ("1.23", InvalidCodeFormat),
    ("😀😀😀😀", InvalidCodeFormat),
    ("12😀4", InvalidCodeFormat),
    ("١٢٣٤", InvalidCodeFormat),  # Arabic-Indic digits
    ("１２３４", InvalidCodeFormat),  # full-width digits
    ("²³⁴⁵", InvalidCodeFormat),  # superscripts: str.isdigit() is true for these
    ("123", InvalidCodeFormat),
    ("12345", InvalidCodeFormat),
    ("1", InvalidCodeFormat),
    ("1" * 10_000, InvalidCodeFormat),  # 10 kB
    ("' OR 1=1 --", InvalidCodeFormat),
    ("12\x0034", InvalidCodeFormat),
    (None, InvalidCodeFormat),
    (1234, InvalidCodeFormat),
    (12.34, InvalidCodeFormat),
    (True, InvalidCodeFormat),
    (b"1234", InvalidCodeFormat),
    (["1234"], InvalidCodeFormat),
    ({"code": "1234"}, InvalidCodeFormat),
]


@pytest.mark.parametrize(("raw", "error"), MALFORMED_CODES, ids=lambda value: repr(value)[:20])
def test_malformed_code_is_a_field_error_and_costs_no_attempt(db, sms, raw, error):
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    before = snapshot(db)
    with pytest.raises(InvalidInput) as caught:
        auth.sign_in(db, PHONE, raw, now=T0)
    assert type(caught.value) is error
    assert caught.value.field == "confirmation_code"
    assert snapshot(db) == before  # attempts unchanged, no user, nothing else touched
    assert attempts(db) == 0
    assert auth.sign_in(db, PHONE, issued.code, now=T0).phone_number == PHONE


def test_malformed_codes_never_exhaust_the_attempts(db, sms):
    issued = auth.request_code(db, PHONE, TEST_IP, now=T0)
    for raw, _error in MALFORMED_CODES:
        with pytest.raises(InvalidInput):
            auth.sign_in(db, PHONE, raw, now=T0)
    assert attempts(db) == 0
    assert auth.sign_in(db, PHONE, issued.code, now=T0).phone_number == PHONE
