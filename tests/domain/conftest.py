"""Fixtures for the domain tests (the ``db``, ``engine`` and ``sms`` fixtures are in tests/conftest.py)."""

from __future__ import annotations

import asyncio

import pytest

from referral_app.domain import auth
from tests.domain.helpers import TEST_IP, phone


@pytest.fixture
def sign_up(db, sms):
    """Sign a phone in through the real flow (request a code, confirm it); returns the user."""

    def _sign_up(phone_number: str, now=None):
        issued = auth.request_code(db, phone_number, TEST_IP, now=now)
        asyncio.run(auth.send_code(issued, sms))
        return auth.sign_in(db, phone_number, issued.code, now=now)

    return _sign_up


@pytest.fixture
def make_users(sign_up):
    """``make_users(n)`` signs up n new users and returns them in order."""
    counter = iter(range(1, 10**6))

    def _make_users(n: int, now=None):
        return [sign_up(phone(next(counter)), now=now) for _ in range(n)]

    return _make_users
