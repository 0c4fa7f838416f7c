"""Sessions: random tokens stored only as SHA-256 hashes, with expiry, revocation and browser claims."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest

from referral_app.domain import sessions
from referral_app.domain.errors import NotAuthenticated
from referral_app.domain.sessions import (
    authenticated_user_id,
    claim_browser_session,
    create_browser_claim,
    create_session,
    revoke_session,
)
from referral_app.settings import settings
from tests.domain.helpers import T0, phone, rows_of, snapshot

URLSAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.fixture
def user(sign_up):
    return sign_up(phone(1), now=T0)


def token_bytes(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


# --- tokens -------------------------------------------------------------------------------


def test_token_has_at_least_128_random_bits(db, user):
    tokens = [create_session(db, user.id, now=T0) for _ in range(200)]
    assert all(set(token) <= URLSAFE for token in tokens)
    assert all(len(token_bytes(token)) >= 16 for token in tokens)  # 16 bytes = 128 bits
    assert len(set(tokens)) == len(tokens)
    # Random bits are about half ones; a counter, a timestamp or a short key would not be.
    bits = "".join(f"{byte:08b}" for token in tokens for byte in token_bytes(token))
    assert 0.47 < bits.count("1") / len(bits) < 0.53


def test_only_the_tokens_hash_is_stored(db, user):
    token = create_session(db, user.id, now=T0)
    [row] = rows_of(db, "auth_sessions")
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    for column, value in row.items():
        assert token not in str(value), column


def test_authenticate_returns_the_sessions_user(db, user, make_users):
    [other] = make_users(1)
    token = create_session(db, user.id, now=T0)
    other_token = create_session(db, other.id, now=T0)
    assert authenticated_user_id(db, token, now=T0) == user.id
    assert authenticated_user_id(db, other_token, now=T0) == other.id


def test_unknown_token_is_not_authenticated(db, user):
    create_session(db, user.id, now=T0)
    with pytest.raises(NotAuthenticated):
        authenticated_user_id(db, sessions.secrets.token_urlsafe(32), now=T0)


# --- expiry -------------------------------------------------------------------------------


def test_session_lasts_thirty_days_by_default(db, user):
    assert settings.session_ttl_days == 30
    token = create_session(db, user.id, now=T0)
    assert authenticated_user_id(db, token, now=T0 + timedelta(days=30) - timedelta(seconds=1)) == user.id
    with pytest.raises(NotAuthenticated):
        authenticated_user_id(db, token, now=T0 + timedelta(days=30))


@pytest.mark.parametrize("days", [1, 7])
def test_session_lifetime_is_a_setting(db, user, monkeypatch, days):
    monkeypatch.setattr(settings, "session_ttl_days", days)
    token = create_session(db, user.id, now=T0)
    assert authenticated_user_id(db, token, now=T0 + timedelta(days=days, seconds=-1)) == user.id
    with pytest.raises(NotAuthenticated):
        authenticated_user_id(db, token, now=T0 + timedelta(days=days))
    with pytest.raises(NotAuthenticated):
        authenticated_user_id(db, token, now=T0 + timedelta(days=days + 365))


# --- revocation ---------------------------------------------------------------------------


def test_revoked_session_is_not_authenticated(db, user):
    token = create_session(db, user.id, now=T0)
    other_device = create_session(db, user.id, now=T0)
    assert revoke_session(db, token, now=T0) is True
    with pytest.raises(NotAuthenticated):
        authenticated_user_id(db, token, now=T0)
    assert authenticated_user_id(db, other_device, now=T0) == user.id  # logout ends one session only
    assert revoke_session(db, token, now=T0) is False  # already ended


@pytest.mark.parametrize("garbage", [None, "", "x" * 10_000, 12345, b"token", ["token"], "no-such-token"])
def test_revoking_garbage_is_harmless(db, user, garbage):
    create_session(db, user.id, now=T0)
    before = snapshot(db)
    assert revoke_session(db, garbage, now=T0) is False
    assert snapshot(db) == before


# --- browser claims -----------------------------------------------------------------------


def test_claim_trades_once_for_a_working_token(db, user):
    claim = create_browser_claim(db, user.id, now=T0)
    token = claim_browser_session(db, claim, now=T0 + timedelta(seconds=1))
    assert token != claim
    assert authenticated_user_id(db, token, now=T0 + timedelta(seconds=2)) == user.id
    with pytest.raises(NotAuthenticated):
        claim_browser_session(db, claim, now=T0 + timedelta(seconds=2))
    assert authenticated_user_id(db, token, now=T0 + timedelta(seconds=3)) == user.id  # the failed re-claim changed nothing


def test_claim_is_not_a_token(db, user):
    claim = create_browser_claim(db, user.id, now=T0)
    with pytest.raises(NotAuthenticated):
        authenticated_user_id(db, claim, now=T0)


def test_claim_and_token_are_stored_only_as_hashes(db, user):
    claim = create_browser_claim(db, user.id, now=T0)
    [row] = rows_of(db, "auth_sessions")
    assert row["claim_hash"] == hashlib.sha256(claim.encode()).hexdigest()
    assert all(claim not in str(value) for value in row.values())
    token = claim_browser_session(db, claim, now=T0)
    [row] = rows_of(db, "auth_sessions")
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert row["claim_hash"] is None and row["claim_expires_at"] is None
    assert all(token not in str(value) and claim not in str(value) for value in row.values())


def test_claim_works_within_sixty_seconds(db, user):
    claim = create_browser_claim(db, user.id, now=T0)
    token = claim_browser_session(db, claim, now=T0 + timedelta(seconds=59))
    assert authenticated_user_id(db, token, now=T0 + timedelta(seconds=59)) == user.id


@pytest.mark.parametrize("age", [timedelta(seconds=60), timedelta(seconds=61), timedelta(days=1)])
def test_claim_expires_after_sixty_seconds(db, user, age):
    claim = create_browser_claim(db, user.id, now=T0)
    with pytest.raises(NotAuthenticated):
        claim_browser_session(db, claim, now=T0 + age)


def test_unclaimed_sessions_token_is_not_usable(db, user, monkeypatch):
    """The token made with the claim is never handed out; it must not open the session."""
    made = []
    real = sessions.secrets.token_urlsafe

    def recording(nbytes=None):
        made.append(real(nbytes))
        return made[-1]

    monkeypatch.setattr(sessions.secrets, "token_urlsafe", recording)
    claim = create_browser_claim(db, user.id, now=T0)
    [unused_token] = [value for value in made if value != claim]
    with pytest.raises(NotAuthenticated):
        authenticated_user_id(db, unused_token, now=T0)
    token = claim_browser_session(db, claim, now=T0)
    with pytest.raises(NotAuthenticated):  # still useless after the claim gave out a fresh token
        authenticated_user_id(db, unused_token, now=T0)
    assert authenticated_user_id(db, token, now=T0) == user.id


def test_claimed_session_expires_and_revokes_like_any_other(db, user):
    claim = create_browser_claim(db, user.id, now=T0)
    token = claim_browser_session(db, claim, now=T0)
    with pytest.raises(NotAuthenticated):
        authenticated_user_id(db, token, now=T0 + timedelta(days=settings.session_ttl_days))
    assert revoke_session(db, token, now=T0) is True
    with pytest.raises(NotAuthenticated):
        authenticated_user_id(db, token, now=T0)


GARBAGE_TOKENS = [None, "", " ", "x" * 129, "x" * 10_000, "😀" * 40, "' OR 1=1 --", 12345, 1.5, True, b"token", ["token"], {"token": "x"}]


@pytest.mark.parametrize("garbage", GARBAGE_TOKENS, ids=lambda value: repr(value)[:20])
def test_garbage_tokens_are_not_authenticated(db, user, garbage):
    create_session(db, user.id, now=T0)
    create_browser_claim(db, user.id, now=T0)
    before = snapshot(db)
    with pytest.raises(NotAuthenticated):
        authenticated_user_id(db, garbage, now=T0)
    with pytest.raises(NotAuthenticated):
        claim_browser_session(db, garbage, now=T0)
    assert snapshot(db) == before
