"""Send limits for confirmation codes: cooldown, per phone per 10 minutes and per day, per client IP.

Times are passed explicitly (``now=``), so no test sleeps. Each window is tested on its own
by relaxing the others through the settings; the races run threads with their own
sessions released together, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from referral_app.domain import auth
from referral_app.domain.errors import RateLimited
from referral_app.settings import settings
from tests.domain.helpers import TABLES, TEST_IP, T0, phone, rows_of
from tests.domain.test_concurrency import outcome, run_together

OTHER_IP = "198.51.100.7"  # TEST-NET-2
ALL_TABLES = (*TABLES, "code_sends")
UNLIMITED = 10**6


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


def request(db, number: str, at, ip: str = TEST_IP):
    return auth.request_code(db, number, ip, now=at)


def refused(db, number: str, at, ip: str = TEST_IP) -> int:
    """Request a code that must be refused; return its ``retry_after``."""
    with pytest.raises(RateLimited) as caught:
        request(db, number, at, ip)
    assert caught.value.params == {"seconds": caught.value.retry_after}  # the message shows the wait
    return caught.value.retry_after


def snapshot_all(db) -> dict[str, list[dict]]:
    return {table: rows_of(db, table) for table in ALL_TABLES}


@pytest.fixture
def only(monkeypatch, send_limits):
    """``only("cooldown")`` etc.: the limits on, every window but the named one relaxed."""
    names = {
        "cooldown": "send_cooldown_seconds",
        "phone_10min": "sends_per_phone_10min",
        "phone_day": "sends_per_phone_day",
        "ip_10min": "sends_per_ip_10min",
    }

    def _only(window: str) -> None:
        for name, setting in names.items():
            if name != window:
                monkeypatch.setattr(settings, setting, 0 if name == "cooldown" else UNLIMITED)

    return _only


# --- each window ----------------------------------------------------------------------------


def test_cooldown_refuses_a_second_send_to_the_phone_until_it_has_passed(db, only):
    only("cooldown")
    request(db, phone(1), T0)

    assert refused(db, phone(1), T0) == 30
    assert refused(db, phone(1), T0 + seconds(10)) == 20
    assert refused(db, phone(1), T0 + seconds(29.2)) == 1  # rounded up, never 0
    request(db, phone(1), T0 + seconds(30))
    assert refused(db, phone(1), T0 + seconds(31)) == 29  # the cooldown runs from the latest send


def test_cooldown_is_per_phone(db, only):
    only("cooldown")
    request(db, phone(1), T0)
    request(db, phone(2), T0)


def test_five_sends_per_phone_in_ten_minutes(db, only):
    only("phone_10min")
    sent = [T0 + seconds(60 * i) for i in range(5)]  # 0, 1, 2, 3, 4 minutes
    for at in sent:
        request(db, phone(1), at)

    # The 6th, at 4:10, waits until the first (0:00) leaves the window at 10:00.
    assert refused(db, phone(1), T0 + seconds(250)) == 350
    assert refused(db, phone(1), T0 + seconds(599)) == 1
    request(db, phone(1), T0 + seconds(600))
    # Now 1:00 is the oldest of the five in the window: the next one waits for 11:00.
    assert refused(db, phone(1), T0 + seconds(601)) == 59
    request(db, phone(1), T0 + seconds(660))
    request(db, phone(2), T0 + seconds(660))  # another phone was never limited


def test_twenty_sends_per_phone_per_day(db, only):
    only("phone_day")
    for hour in range(20):
        request(db, phone(1), T0 + timedelta(hours=hour))

    at = T0 + timedelta(hours=20)
    assert refused(db, phone(1), at) == 4 * 3600  # until the first send is a day old
    request(db, phone(1), T0 + timedelta(days=1))
    assert refused(db, phone(1), T0 + timedelta(days=1, minutes=1)) == 3600 - 60


def test_thirty_sends_per_ip_in_ten_minutes_across_phones(db, only):
    only("ip_10min")
    for n in range(30):
        request(db, phone(n), T0 + seconds(n))

    # Any phone, new or not, is refused from that IP until the first send leaves the window.
    assert refused(db, phone(100), T0 + seconds(30)) == 570
    assert refused(db, phone(0), T0 + seconds(30)) == 570
    request(db, phone(100), T0 + seconds(30), ip=OTHER_IP)  # another IP is not affected
    request(db, phone(101), T0 + seconds(600))
    assert refused(db, phone(102), T0 + seconds(600)) == 1  # the second send (0:01) is still in


def test_default_settings_allow_a_normal_sign_in_pace(db, send_limits):
    """With the shipped numbers: a code every 30 s works 5 times, the 6th waits for the window."""
    for i in range(5):
        request(db, phone(1), T0 + seconds(30 * i))
    # At 2:10 both the cooldown (until 2:30) and the 10-minute window (until 10:00) are full:
    # the answer is the longer wait, so that retrying then succeeds.
    assert refused(db, phone(1), T0 + seconds(130)) == 470
    request(db, phone(1), T0 + seconds(600))


# --- what a refusal leaves behind -------------------------------------------------------------


@pytest.mark.parametrize("window", ["cooldown", "phone_10min", "phone_day", "ip_10min"])
def test_a_refused_request_writes_nothing(db, only, monkeypatch, window):
    only(window)
    counted = {
        "phone_10min": "sends_per_phone_10min",
        "phone_day": "sends_per_phone_day",
        "ip_10min": "sends_per_ip_10min",
    }
    if window in counted:
        monkeypatch.setattr(settings, counted[window], 2)
    latest = request(db, phone(1), T0)
    if window in ("phone_10min", "phone_day"):
        latest = request(db, phone(1), T0 + seconds(1))
    elif window == "ip_10min":
        request(db, phone(2), T0 + seconds(1))
    before = snapshot_all(db)
    assert len(before["code_sends"]) == (1 if window == "cooldown" else 2)

    refused(db, phone(1), T0 + seconds(2))

    assert snapshot_all(db) == before
    # The code sent before the refusal was not replaced: it still signs in.
    assert auth.sign_in(db, phone(1), latest.code, now=T0 + seconds(2)).phone_number == phone(1)


def test_the_session_is_usable_after_a_refusal(db, only):
    only("cooldown")
    request(db, phone(1), T0)
    refused(db, phone(1), T0)
    request(db, phone(2), T0)
    assert [row["phone_number"] for row in rows_of(db, "code_sends")] == [phone(1), phone(2)]


# --- settings -------------------------------------------------------------------------------


def test_nothing_is_refused_when_limits_are_off(db, monkeypatch):
    monkeypatch.setattr(settings, "rate_limits_enabled", False)
    for n in range(40):
        request(db, phone(1), T0)
        request(db, phone(n + 2), T0)
    assert len(rows_of(db, "code_sends")) == 80  # still logged, so switching on counts them


def test_the_numbers_come_from_the_settings(db, send_limits, monkeypatch):
    monkeypatch.setattr(settings, "send_cooldown_seconds", 5)
    request(db, phone(1), T0)
    assert refused(db, phone(1), T0 + seconds(1)) == 4
    request(db, phone(1), T0 + seconds(5))

    monkeypatch.setattr(settings, "sends_per_phone_10min", 2)
    assert refused(db, phone(1), T0 + seconds(10)) == 590

    monkeypatch.setattr(settings, "sends_per_phone_10min", 5)
    monkeypatch.setattr(settings, "sends_per_phone_day", 3)
    request(db, phone(1), T0 + seconds(10))
    assert refused(db, phone(1), T0 + seconds(20)) == 24 * 3600 - 20

    monkeypatch.setattr(settings, "sends_per_ip_10min", 4)
    request(db, phone(2), T0 + seconds(20))
    assert refused(db, phone(3), T0 + seconds(21)) == 600 - 21

    monkeypatch.setattr(settings, "send_cooldown_seconds", 0)
    monkeypatch.setattr(settings, "sends_per_phone_day", UNLIMITED)
    monkeypatch.setattr(settings, "sends_per_ip_10min", UNLIMITED)
    monkeypatch.setattr(settings, "sends_per_phone_10min", UNLIMITED)
    for _ in range(10):
        request(db, phone(1), T0 + seconds(30))


# --- races ----------------------------------------------------------------------------------


def test_simultaneous_requests_for_one_phone_send_once(db, engine, send_limits):
    results = run_together(engine, 10, lambda session, i: auth.request_code(session, phone(1), TEST_IP, now=T0))

    assert Counter(map(outcome, results)) == {"ok": 1, "RateLimited": 9}
    assert {result.retry_after for kind, result in results if kind == "error"} == {30}
    assert len(rows_of(db, "code_sends")) == 1
    [code] = rows_of(db, "confirmation_codes")
    [issued] = [result for kind, result in results if kind == "ok"]
    assert auth.sign_in(db, phone(1), issued.code, now=T0).phone_number == phone(1)
    assert code["phone_number"] == phone(1)


def test_simultaneous_requests_from_one_ip_stop_at_its_limit(db, engine, send_limits):
    assert settings.sends_per_ip_10min == 30
    results = run_together(engine, 40, lambda session, i: auth.request_code(session, phone(i), TEST_IP, now=T0))

    assert Counter(map(outcome, results)) == {"ok": 30, "RateLimited": 10}
    winners = sorted(phone(i) for i, (kind, _) in enumerate(results) if kind == "ok")
    assert sorted(row["phone_number"] for row in rows_of(db, "code_sends")) == winners
    assert sorted(row["phone_number"] for row in rows_of(db, "confirmation_codes")) == winners


def test_a_zero_limit_turns_that_window_off(db, send_limits, monkeypatch):
    monkeypatch.setattr(send_limits, "send_cooldown_seconds", 0)
    monkeypatch.setattr(send_limits, "sends_per_phone_10min", 0)
    monkeypatch.setattr(send_limits, "sends_per_phone_day", 0)
    for second in range(8):
        auth.request_code(db, phone(1), TEST_IP, now=T0 + timedelta(seconds=second))
