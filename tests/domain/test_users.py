"""Sign-in: the first sign-in of a phone creates the user with a unique invite code."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from referral_app.domain import auth, users
from referral_app.domain.errors import WrongCode
from referral_app.domain.invites import ALPHABET
from referral_app.models import User
from tests.domain.helpers import TEST_IP, T0, phone, rows_of

INVITE_CODE = re.compile(f"[{ALPHABET}]{{6}}")


def all_users(db) -> list[User]:
    result = db.exec(select(User).order_by(User.id)).all()
    db.rollback()
    return list(result)


def test_first_sign_in_creates_the_user(db, sms):
    issued = auth.request_code(db, "8 912 000-00-01", TEST_IP, now=T0)
    user = auth.sign_in(db, "+7 912 000-00-01", issued.code, now=T0)
    [row] = rows_of(db, "users")
    assert row["id"] == user.id
    assert row["phone_number"] == phone(1)
    assert INVITE_CODE.fullmatch(row["invite_code"])
    assert row["invited_by_id"] is None and row["activated_at"] is None
    assert row["invited_count"] == 0
    assert user.created_at == T0


def test_second_sign_in_returns_the_same_user(db, sign_up):
    first = sign_up(phone(1), now=T0)
    second = sign_up(phone(1), now=T0 + timedelta(days=3))
    assert (second.id, second.invite_code, second.created_at) == (first.id, first.invite_code, T0)
    assert len(all_users(db)) == 1


def test_each_user_gets_an_own_invite_code(db, make_users):
    created = make_users(30)
    codes = [user.invite_code for user in created]
    assert all(INVITE_CODE.fullmatch(code) for code in codes)
    assert len(set(codes)) == 30


def test_failed_sign_in_creates_no_user(db, sms):
    issued = auth.request_code(db, phone(1), TEST_IP, now=T0)
    wrong = "0000" if issued.code != "0000" else "1111"
    with pytest.raises(WrongCode):
        auth.sign_in(db, phone(1), wrong, now=T0)
    assert all_users(db) == []


def test_invite_code_collision_retries_with_a_new_code(db, sms, sign_up, monkeypatch):
    existing = sign_up(phone(1), now=T0)
    handed_out = []
    candidates = iter([existing.invite_code, existing.invite_code, "NEW234"])

    def generate():
        handed_out.append(next(candidates))
        return handed_out[-1]

    monkeypatch.setattr(users, "generate_invite_code", generate)
    issued = auth.request_code(db, phone(2), TEST_IP, now=T0)
    user = auth.sign_in(db, phone(2), issued.code, now=T0)
    assert handed_out == [existing.invite_code, existing.invite_code, "NEW234"]
    assert user.invite_code == "NEW234"
    assert [(u.phone_number, u.invite_code) for u in all_users(db)] == [
        (phone(1), existing.invite_code),
        (phone(2), "NEW234"),
    ]
    # The retry kept the sign-in's unit of work: the code is used up with the user created.
    assert rows_of(db, "confirmation_codes") == []
    with pytest.raises(WrongCode):
        auth.sign_in(db, phone(2), issued.code, now=T0)


def test_invite_codes_are_unique_in_the_database(db, sign_up):
    existing = sign_up(phone(1), now=T0)
    db.add(User(phone_number=phone(2), invite_code=existing.invite_code, created_at=T0))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_phone_numbers_are_unique_in_the_database(db, sign_up):
    sign_up(phone(1), now=T0)
    db.add(User(phone_number=phone(1), invite_code="NEW234", created_at=T0))
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()


def test_deactivating_revokes_every_session_for_good(db, sign_up):
    from referral_app.domain import sessions
    from referral_app.domain.errors import NotAuthenticated
    from referral_app.domain.users import set_user_active

    user = sign_up(phone(1), now=T0)
    token = sessions.create_session(db, user.id)
    assert set_user_active(db, user.id, False)
    set_user_active(db, user.id, True)
    with pytest.raises(NotAuthenticated):
        sessions.authenticated_user_id(db, token)
