"""Staff accounts: bcrypt passwords, one answer for every failed login, and the lockout."""

from __future__ import annotations

from datetime import timedelta

import bcrypt
import pytest
from sqlmodel import select

from referral_app.domain import staff
from referral_app.domain.errors import InvalidCredentials, StaffLockedOut
from referral_app.models import StaffAccount, StaffLoginFailure
from referral_app.settings import settings
from tests.domain.helpers import T0, rows_of

PASSWORD = "correct horse battery"
IP, OTHER_IP = "192.0.2.10", "192.0.2.20"


@pytest.fixture
def fast_bcrypt(monkeypatch):
    monkeypatch.setattr(settings, "bcrypt_rounds", 4)


@pytest.fixture
def alice(db, fast_bcrypt) -> StaffAccount:
    return staff.create_staff(db, "alice", PASSWORD, now=T0)


@pytest.fixture
def checkpw_calls(monkeypatch) -> list[bytes]:
    """Every bcrypt check made, as the stored hash it was checked against."""
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


def failures(db) -> list[dict]:
    return rows_of(db, "staff_login_failures")


def fail(db, username: str, ip: str, now, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(InvalidCredentials):
            staff.authenticate_staff(db, username, "wrong password!", ip, now=now)


# Creating accounts


def test_create_staff_hashes_with_bcrypt_at_the_default_cost(db):
    assert settings.bcrypt_rounds == 12  # the default; this test does not lower it
    account = staff.create_staff(db, "root_admin", PASSWORD, now=T0)
    [row] = rows_of(db, "staff_accounts")
    assert row["username"] == "root_admin"
    assert row["password_hash"].startswith("$2b$12$") and len(row["password_hash"]) == 60
    assert PASSWORD not in row["password_hash"]
    assert bcrypt.checkpw(PASSWORD.encode(), row["password_hash"].encode())
    assert bool(row["is_active"]) is True and row["last_login_at"] is None
    assert account.created_at == T0


def test_the_cost_is_a_setting(db, fast_bcrypt):
    staff.create_staff(db, "cheap", PASSWORD)
    assert rows_of(db, "staff_accounts")[0]["password_hash"].startswith("$2b$04$")


def test_two_accounts_with_one_password_get_different_hashes(db, fast_bcrypt):
    staff.create_staff(db, "one", PASSWORD)
    staff.create_staff(db, "two", PASSWORD)
    first, second = (row["password_hash"] for row in rows_of(db, "staff_accounts"))
    assert first != second


@pytest.mark.parametrize(
    "password",
    ["", "short", "123456789", "a" * 73, "я" * 37, "€" * 25],  # 9 chars; 73 bytes; 74 bytes; 75 bytes
)
def test_passwords_outside_the_rules_are_refused(db, fast_bcrypt, password):
    with pytest.raises(staff.WeakPassword) as error:
        staff.create_staff(db, "alice", password)
    assert error.value.code == "staff.password" and error.value.field == "password"
    assert error.value.params == {"min": 10, "max": 72}
    assert rows_of(db, "staff_accounts") == []


@pytest.mark.parametrize("password", ["1234567890", "a" * 72, "я" * 36, "pass phrase with spaces"])
def test_passwords_within_the_rules_work(db, fast_bcrypt, password):
    staff.create_staff(db, "alice", password)
    assert staff.authenticate_staff(db, "alice", password, IP).username == "alice"


@pytest.mark.parametrize(
    "username", ["", "ab", "a" * 65, "has space", "semi;colon", "slash/name", "ünïcode", "tab\tname", "new\nline"]
)
def test_bad_usernames_are_refused(db, fast_bcrypt, username):
    with pytest.raises(staff.InvalidUsername) as error:
        staff.create_staff(db, username, PASSWORD)
    assert error.value.code == "staff.username" and error.value.field == "username"
    assert rows_of(db, "staff_accounts") == []


@pytest.mark.parametrize("username", ["bob", "a" * 64, "first.last", "ops@example.org", "under_score-dash"])
def test_good_usernames_are_accepted(db, fast_bcrypt, username):
    assert staff.create_staff(db, username, PASSWORD).username == username


def test_a_taken_username_is_refused(db, alice):
    with pytest.raises(staff.UsernameTaken) as error:
        staff.create_staff(db, "alice", "another password")
    assert error.value.code == "staff.username_taken"
    [row] = rows_of(db, "staff_accounts")
    assert row["id"] == alice.id
    # The session is usable after the refused insert.
    assert staff.create_staff(db, "alice2", PASSWORD).id != alice.id


# Logging in


def test_a_correct_login_returns_the_account_and_records_the_time(db, alice):
    later = T0 + timedelta(days=1)
    account = staff.authenticate_staff(db, "alice", PASSWORD, IP, now=later)
    assert account.id == alice.id
    assert rows_of(db, "staff_accounts")[0]["last_login_at"] is not None
    assert db.get(StaffAccount, alice.id).last_login_at == later
    db.rollback()
    assert failures(db) == []


def test_usernames_are_case_sensitive(db, alice):
    with pytest.raises(InvalidCredentials):
        staff.authenticate_staff(db, "ALICE", PASSWORD, IP, now=T0)


def test_wrong_password_and_unknown_user_get_the_same_answer_after_the_same_work(db, alice, checkpw_calls):
    errors = []
    for username, password in [("alice", "wrong password!"), ("nobody", "wrong password!"), ("nobody", PASSWORD)]:
        with pytest.raises(InvalidCredentials) as error:
            staff.authenticate_staff(db, username, password, IP, now=T0)
        errors.append(error.value)
    assert {(e.code, e.field, tuple(sorted(e.params.items())), str(e)) for e in errors} == {
        ("staff.invalid_credentials", None, (), "staff.invalid_credentials")
    }
    # One bcrypt check each, at the configured cost, also for the unknown user.
    assert len(checkpw_calls) == 3
    assert all(hashed.startswith(b"$2b$04$") for hashed in checkpw_calls)
    assert checkpw_calls[1] != alice.password_hash.encode()
    assert [row["username"] for row in failures(db)] == ["alice", "nobody", "nobody"]


def test_the_unknown_user_check_costs_as_much_as_a_real_one(db, monkeypatch, checkpw_calls):
    monkeypatch.setattr(settings, "bcrypt_rounds", 8)
    staff.create_staff(db, "alice", PASSWORD)
    for username in ("alice", "nobody"):
        with pytest.raises(InvalidCredentials):
            staff.authenticate_staff(db, username, "wrong password!", IP, now=T0)
    assert [hashed[:7] for hashed in checkpw_calls] == [b"$2b$08$", b"$2b$08$"]


def test_an_inactive_account_is_refused_like_a_wrong_password(db, alice, checkpw_calls):
    alice.is_active = False
    db.add(alice)
    db.commit()
    with pytest.raises(InvalidCredentials) as error:
        staff.authenticate_staff(db, "alice", PASSWORD, IP, now=T0)
    assert type(error.value) is InvalidCredentials and error.value.params == {}
    assert len(checkpw_calls) == 1
    assert rows_of(db, "staff_accounts")[0]["last_login_at"] is None
    assert len(failures(db)) == 1


@pytest.mark.parametrize("password", [None, "", "x" * 10_000, "wrong password!" + "\x00"])
def test_odd_passwords_fail_cleanly(db, alice, password):
    with pytest.raises(InvalidCredentials):
        staff.authenticate_staff(db, "alice", password, IP, now=T0)


def test_get_active_staff(db, alice):
    assert staff.get_active_staff(db, alice.id).username == "alice"
    assert staff.get_active_staff(db, alice.id + 1000) is None
    alice.is_active = False
    db.add(alice)
    db.commit()
    assert staff.get_active_staff(db, alice.id) is None


# The lockout


def test_five_failures_for_a_username_lock_it_even_with_the_right_password(db, alice):
    for minute in range(5):
        fail(db, "alice", f"192.0.2.{100 + minute}", now=T0 + timedelta(minutes=minute))
    last = T0 + timedelta(minutes=4)
    with pytest.raises(StaffLockedOut) as error:
        staff.authenticate_staff(db, "alice", PASSWORD, OTHER_IP, now=last + timedelta(minutes=1))
    assert error.value.code == "staff.locked_out"
    assert error.value.retry_after == 14 * 60
    assert error.value.params == {"minutes": 14}
    # Still locked a second before 15 minutes after the last failure; attempts while locked add nothing.
    with pytest.raises(StaffLockedOut) as error:
        staff.authenticate_staff(db, "alice", PASSWORD, OTHER_IP, now=last + timedelta(minutes=15, seconds=-1))
    assert error.value.retry_after == 1 and error.value.params == {"minutes": 1}
    assert len(failures(db)) == 5
    assert rows_of(db, "staff_accounts")[0]["last_login_at"] is None
    # Then open again.
    assert staff.authenticate_staff(db, "alice", PASSWORD, OTHER_IP, now=last + timedelta(minutes=15)).id == alice.id


def test_four_failures_do_not_lock(db, alice):
    fail(db, "alice", IP, now=T0, times=4)
    assert staff.authenticate_staff(db, "alice", PASSWORD, IP, now=T0).id == alice.id


def test_the_lock_lasts_15_minutes_after_the_last_failure_even_when_failures_are_spread(db, alice):
    """Five failures within 15 minutes, the first one early: the lock still runs 15 minutes from the fifth."""
    moments = [T0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=11), T0 + timedelta(minutes=12),
               T0 + timedelta(minutes=13)]
    for moment in moments:
        fail(db, "alice", IP, now=moment)
    for later in (timedelta(minutes=1), timedelta(minutes=7), timedelta(minutes=14, seconds=59)):
        with pytest.raises(StaffLockedOut) as error:
            staff.authenticate_staff(db, "alice", PASSWORD, OTHER_IP, now=moments[-1] + later)
        assert error.value.retry_after == (timedelta(minutes=15) - later).total_seconds()
    assert staff.authenticate_staff(db, "alice", PASSWORD, OTHER_IP, now=moments[-1] + timedelta(minutes=15)).id


def test_a_locked_username_is_locked_from_every_ip_but_others_are_not(db, alice, fast_bcrypt):
    staff.create_staff(db, "bob", PASSWORD)
    fail(db, "alice", IP, now=T0, times=5)
    with pytest.raises(StaffLockedOut):
        staff.authenticate_staff(db, "alice", PASSWORD, OTHER_IP, now=T0)
    # The IP has five failures too, so bob signs in from another address.
    assert staff.authenticate_staff(db, "bob", PASSWORD, OTHER_IP, now=T0).username == "bob"


def test_five_failures_from_one_ip_lock_that_ip_for_every_username(db, alice, fast_bcrypt):
    staff.create_staff(db, "bob", PASSWORD)
    for number in range(5):
        fail(db, f"guess{number}", IP, now=T0 + timedelta(seconds=number))
    for username in ("alice", "bob", "guess0"):
        with pytest.raises(StaffLockedOut) as error:
            staff.authenticate_staff(db, username, PASSWORD, IP, now=T0 + timedelta(minutes=1))
        assert error.value.params == {"minutes": 15}
    # The usernames themselves are not locked: the right password works from elsewhere.
    assert staff.authenticate_staff(db, "alice", PASSWORD, OTHER_IP, now=T0 + timedelta(minutes=1)).id == alice.id
    # And the IP opens again 15 minutes after its last failure.
    reopened = T0 + timedelta(minutes=15, seconds=4)
    assert staff.authenticate_staff(db, "bob", PASSWORD, IP, now=reopened).username == "bob"


def test_failures_older_than_15_minutes_do_not_count(db, alice):
    fail(db, "alice", IP, now=T0, times=3)
    fail(db, "alice", IP, now=T0 + timedelta(minutes=16), times=4)
    # 7 failures in all, but never 5 within 15 minutes.
    assert staff.authenticate_staff(db, "alice", PASSWORD, IP, now=T0 + timedelta(minutes=16)).id == alice.id
    assert len(failures(db)) == 7


def test_a_successful_login_does_not_reset_the_count(db, alice):
    """Failures count for 15 minutes whatever happens in between: a success does not clear them."""
    fail(db, "alice", IP, now=T0, times=4)
    staff.authenticate_staff(db, "alice", PASSWORD, IP, now=T0)
    fail(db, "alice", IP, now=T0)
    with pytest.raises(StaffLockedOut):
        staff.authenticate_staff(db, "alice", PASSWORD, IP, now=T0)


def test_a_lockout_is_checked_before_the_password(db, alice, checkpw_calls):
    fail(db, "alice", IP, now=T0, times=5)
    checkpw_calls.clear()
    with pytest.raises(StaffLockedOut):
        staff.authenticate_staff(db, "alice", PASSWORD, IP, now=T0)
    assert checkpw_calls == []


def test_login_failures_are_stored_per_username_and_ip(db, alice):
    fail(db, "alice", IP, now=T0)
    [row] = db.exec(select(StaffLoginFailure)).all()
    db.rollback()
    assert (row.username, row.client_ip, row.failed_at) == ("alice", IP, T0)
