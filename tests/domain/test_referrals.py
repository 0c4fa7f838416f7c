"""Activation (once, not one's own, code must exist, no loops) and the paginated referral list."""

from __future__ import annotations

import base64
from datetime import timedelta, timezone

import pytest
from sqlalchemy import event, text

from referral_app.domain.errors import (
    AlreadyActivated,
    InvalidCursor,
    InvalidInput,
    InvalidInviteCode,
    InvalidLimit,
    InviteCodeRequired,
    InviteLoop,
    NotAuthenticated,
    OwnInviteCode,
    RuleViolation,
    UnknownInviteCode,
)
from referral_app.domain.referrals import (
    MAX_PAGE_SIZE,
    activate_invite,
    encode_cursor,
    get_profile,
    list_referrals,
)
from tests.domain.helpers import T0, snapshot

T1 = T0 + timedelta(hours=1)


def invited_count(db, user_id: int) -> int:
    return get_profile(db, user_id).invited_count


def all_pages(db, user_id: int, limit: int) -> list[tuple[str, object]]:
    """Walk the cursor to the end; every item as (phone, activated_at)."""
    items, cursor, pages = [], None, 0
    while True:
        page = list_referrals(db, user_id, cursor=cursor, limit=limit)
        assert len(page.items) <= limit
        items += [(item.phone_number, item.activated_at) for item in page.items]
        pages += 1
        assert pages < 1000
        if page.next_cursor is None:
            return items
        assert len(page.items) == limit  # only a full page has a next one
        cursor = page.next_cursor


def free_invite_code(db) -> str:
    """A well-formed invite code that nobody has."""
    taken = {row[0] for row in db.exec(text("SELECT invite_code FROM users")).all()}
    db.rollback()
    return next(code for code in ("ZZZZZZ", "ZZZZZY", "ZZZZZX") if code not in taken)


# --- activation ---------------------------------------------------------------------------


def test_activation_links_the_user_to_the_codes_owner(db, make_users):
    a, b = make_users(2, now=T0)
    owner = activate_invite(db, b.id, a.invite_code, now=T1)
    assert owner.id == a.id
    profile = get_profile(db, b.id)
    assert profile.activated_invite_code == a.invite_code
    assert profile.invited_by == a.phone_number
    assert profile.activated_at == T1
    assert invited_count(db, a.id) == 1
    assert invited_count(db, b.id) == 0


def test_activation_accepts_code_as_people_type_it(db, make_users):
    a, b = make_users(2, now=T0)
    typed = " " + "-".join(a.invite_code.lower()) + " "
    assert activate_invite(db, b.id, typed, now=T1).id == a.id


def test_activation_happens_once_only(db, make_users):
    a, b, c = make_users(3, now=T0)
    activate_invite(db, b.id, a.invite_code, now=T1)
    before = snapshot(db)
    with pytest.raises(AlreadyActivated):
        activate_invite(db, b.id, c.invite_code, now=T1 + timedelta(minutes=1))  # another valid code
    with pytest.raises(AlreadyActivated):
        activate_invite(db, b.id, a.invite_code, now=T1 + timedelta(minutes=1))  # the same code again
    assert snapshot(db) == before
    assert get_profile(db, b.id).invited_by == a.phone_number
    assert (invited_count(db, a.id), invited_count(db, c.id)) == (1, 0)


def test_own_code_is_refused(db, make_users):
    a, b = make_users(2, now=T0)
    before = snapshot(db)
    with pytest.raises(OwnInviteCode) as caught:
        activate_invite(db, a.id, a.invite_code.lower(), now=T1)
    assert caught.value.field == "invite_code"
    assert snapshot(db) == before
    activate_invite(db, a.id, b.invite_code, now=T1)  # the one activation is still there to use


def test_unknown_code_is_refused(db, make_users):
    a, b = make_users(2, now=T0)
    before = snapshot(db)
    with pytest.raises(UnknownInviteCode):
        activate_invite(db, a.id, free_invite_code(db), now=T1)
    assert snapshot(db) == before
    activate_invite(db, a.id, b.invite_code, now=T1)


def test_unknown_user_is_not_authenticated(db, make_users):
    [a] = make_users(1, now=T0)
    before = snapshot(db)
    with pytest.raises(NotAuthenticated):
        activate_invite(db, a.id + 1000, a.invite_code, now=T1)
    with pytest.raises(NotAuthenticated):
        get_profile(db, a.id + 1000)
    assert snapshot(db) == before


def test_direct_loop_is_refused(db, make_users):
    """A invited B, so A cannot enter B's code."""
    a, b = make_users(2, now=T0)
    activate_invite(db, b.id, a.invite_code, now=T1)
    before = snapshot(db)
    with pytest.raises(InviteLoop):
        activate_invite(db, a.id, b.invite_code, now=T1)
    assert snapshot(db) == before


def test_loop_down_the_chain_is_refused(db, make_users):
    """A invited B, B invited C, C invited D: A cannot enter the code of B, C or D."""
    a, b, c, d, stranger = make_users(5, now=T0)
    activate_invite(db, b.id, a.invite_code, now=T1)
    activate_invite(db, c.id, b.invite_code, now=T1)
    activate_invite(db, d.id, c.invite_code, now=T1)
    before = snapshot(db)
    for descendant in (b, c, d):
        with pytest.raises(InviteLoop):
            activate_invite(db, a.id, descendant.invite_code, now=T1)
    assert snapshot(db) == before
    # A refused loop uses up nothing: A can still enter an outsider's code.
    assert activate_invite(db, a.id, stranger.invite_code, now=T1).id == stranger.id


def test_codes_outside_ones_own_chain_are_fine(db, make_users):
    """Sharing an inviter is not a loop: B and C were both invited by A; D enters B's code, C enters D's."""
    a, b, c, d = make_users(4, now=T0)
    activate_invite(db, b.id, a.invite_code, now=T1)
    activate_invite(db, d.id, b.invite_code, now=T1)
    activate_invite(db, c.id, d.invite_code, now=T1)
    assert get_profile(db, c.id).invited_by == d.phone_number


def test_invited_count_follows_activations(db, make_users):
    a, *others = make_users(4, now=T0)
    for number, other in enumerate(others, start=1):
        activate_invite(db, other.id, a.invite_code, now=T1)
        assert invited_count(db, a.id) == number


def test_invited_count_is_read_from_the_user_row(db, make_users):
    """The profile reads the kept count; it does not count the referrals."""
    a, b = make_users(2, now=T0)
    activate_invite(db, b.id, a.invite_code, now=T1)
    db.exec(text("UPDATE users SET invited_count = 42 WHERE id = :id"), params={"id": a.id})
    db.commit()
    assert invited_count(db, a.id) == 42


def test_invited_count_is_updated_in_the_activations_transaction(db, engine, make_users):
    """If the count cannot be updated, the activation is rolled back too."""
    a, b = make_users(2, now=T0)

    def fail_on_count(conn, cursor, statement, parameters, context, executemany):
        if "invited_count" in statement and statement.lstrip().upper().startswith("UPDATE"):
            raise RuntimeError("simulated failure while counting")

    event.listen(engine, "before_cursor_execute", fail_on_count)
    try:
        with pytest.raises(RuntimeError):
            activate_invite(db, b.id, a.invite_code, now=T1)
    finally:
        event.remove(engine, "before_cursor_execute", fail_on_count)
    profile = get_profile(db, b.id)
    assert (profile.invited_by, profile.activated_at) == (None, None)
    assert invited_count(db, a.id) == 0
    activate_invite(db, b.id, a.invite_code, now=T1)  # and the activation is still available
    assert invited_count(db, a.id) == 1


BAD_INVITE_INPUT = [
    ("", InviteCodeRequired),
    (" - ", InviteCodeRequired),
    (None, InvalidInviteCode),
    (123456, InvalidInviteCode),
    ("ABC12", InvalidInviteCode),
    ("7KQ2MO", InvalidInviteCode),
    ("😀" * 6, InvalidInviteCode),
    ("' OR 1=1 --", InvalidInviteCode),
    ("%%%%%%", InvalidInviteCode),
    ("A" * 10_000, InvalidInviteCode),
]


@pytest.mark.parametrize(("raw", "error"), BAD_INVITE_INPUT, ids=lambda value: repr(value)[:20])
def test_malformed_invite_code_changes_nothing(db, make_users, raw, error):
    a, b = make_users(2, now=T0)
    before = snapshot(db)
    with pytest.raises(InvalidInput) as caught:
        activate_invite(db, b.id, raw, now=T1)
    assert type(caught.value) is error
    assert caught.value.field == "invite_code"
    assert snapshot(db) == before
    activate_invite(db, b.id, a.invite_code, now=T1)


def test_rule_errors_name_the_field(db, make_users):
    a, b = make_users(2, now=T0)
    activate_invite(db, b.id, a.invite_code, now=T1)
    for user, code in [(b, a.invite_code), (a, a.invite_code), (a, free_invite_code(db)), (a, b.invite_code)]:
        with pytest.raises(RuleViolation) as caught:
            activate_invite(db, user.id, code, now=T1)
        assert caught.value.field == "invite_code"


# --- profile ------------------------------------------------------------------------------


def test_profile_of_a_new_user(db, make_users):
    [a] = make_users(1, now=T0)
    profile = get_profile(db, a.id)
    assert profile.phone_number == a.phone_number
    assert profile.invite_code == a.invite_code
    assert (profile.activated_invite_code, profile.invited_by, profile.activated_at) == (None, None, None)
    assert profile.invited_count == 0


def test_profile_after_activation_and_referrals(db, make_users):
    a, b, c = make_users(3, now=T0)
    activate_invite(db, b.id, a.invite_code, now=T1)
    activate_invite(db, c.id, b.invite_code, now=T1 + timedelta(minutes=1))
    profile = get_profile(db, b.id)
    assert profile.phone_number == b.phone_number
    assert profile.invite_code == b.invite_code
    assert profile.activated_invite_code == a.invite_code
    assert profile.invited_by == a.phone_number
    assert profile.activated_at == T1
    assert profile.invited_count == 1


# --- referral list ------------------------------------------------------------------------


def test_referral_list_is_newest_first(db, make_users):
    owner, *referred = make_users(5, now=T0)
    # Activated in a shuffled order of times, so insertion order is not the answer.
    minutes = [3, 1, 4, 2]
    for user, minute in zip(referred, minutes):
        activate_invite(db, user.id, owner.invite_code, now=T1 + timedelta(minutes=minute))
    page = list_referrals(db, owner.id, limit=10)
    expected = sorted(zip(minutes, [u.phone_number for u in referred]), reverse=True)
    assert [(item.phone_number, item.activated_at) for item in page.items] == [
        (number, T1 + timedelta(minutes=minute)) for minute, number in expected
    ]
    assert page.next_cursor is None


def test_referral_list_shows_only_ones_own_referrals(db, make_users):
    a, b, c, d = make_users(4, now=T0)
    activate_invite(db, b.id, a.invite_code, now=T1)
    activate_invite(db, c.id, b.invite_code, now=T1)
    activate_invite(db, d.id, a.invite_code, now=T1)
    assert {item.phone_number for item in list_referrals(db, a.id).items} == {b.phone_number, d.phone_number}
    assert [item.phone_number for item in list_referrals(db, b.id).items] == [c.phone_number]
    assert list_referrals(db, c.id).items == []
    assert list_referrals(db, c.id).next_cursor is None


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 7, 8, 100])
def test_pages_give_every_referral_once_in_order(db, make_users, limit):
    owner, *referred = make_users(8, now=T0)
    for number, user in enumerate(referred):
        activate_invite(db, user.id, owner.invite_code, now=T1 + timedelta(seconds=number))
    expected = [(u.phone_number, T1 + timedelta(seconds=n)) for n, u in reversed(list(enumerate(referred)))]
    assert all_pages(db, owner.id, limit) == expected


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_pages_with_identical_activation_times(db, make_users, limit):
    """Ties on activated_at are broken by id, so nothing is skipped or repeated across pages."""
    owner, *referred = make_users(9, now=T0)
    # Three groups of referrals, each activated at the very same instant.
    times = [T1] * 3 + [T1 + timedelta(seconds=1)] * 3 + [T1 + timedelta(seconds=2)] * 2
    for user, moment in zip(referred, times):
        activate_invite(db, user.id, owner.invite_code, now=moment)
    expected = sorted(
        ((moment, user.id, user.phone_number) for user, moment in zip(referred, times)), reverse=True
    )
    assert all_pages(db, owner.id, limit) == [(number, moment) for moment, _id, number in expected]


def test_full_last_page_has_no_next_cursor(db, make_users):
    owner, *referred = make_users(4, now=T0)
    for user in referred:
        activate_invite(db, user.id, owner.invite_code, now=T1)
    page = list_referrals(db, owner.id, limit=3)
    assert len(page.items) == 3 and page.next_cursor is None
    first = list_referrals(db, owner.id, limit=2)
    second = list_referrals(db, owner.id, cursor=first.next_cursor, limit=2)
    assert len(second.items) == 1 and second.next_cursor is None


def test_default_and_extreme_page_sizes(db, make_users):
    owner, *referred = make_users(4, now=T0)
    for user in referred:
        activate_invite(db, user.id, owner.invite_code, now=T1)
    assert len(list_referrals(db, owner.id).items) == 3
    assert len(list_referrals(db, owner.id, limit=1).items) == 1
    assert len(list_referrals(db, owner.id, cursor=None, limit=1).items) == 1  # None is the first page
    assert len(list_referrals(db, owner.id, limit=MAX_PAGE_SIZE).items) == 3


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


BAD_CURSORS = [
    "",
    "garbage",
    "!!!!",
    "====",
    "😀",
    "' OR 1=1 --",
    "a" * 65,
    "a" * 10_000,  # 10 kB
    _b64("not a cursor"),
    _b64("2030-01-01T12:00:00+00:00"),  # no id
    _b64("2030-01-01T12:00:00+00:00|1|2"),
    _b64("2030-01-01T12:00:00|5"),  # no time zone
    _b64("2030-13-01T12:00:00+00:00|5"),
    _b64("2030-01-01T12:00:00+00:00|0"),
    _b64("2030-01-01T12:00:00+00:00|-5"),
    _b64("2030-01-01T12:00:00+00:00|abc"),
    _b64("2030-01-01T12:00:00+00:00|99999999999"),
    _b64("9999-12-31T23:59:59-23:59|5"),  # past the end of the calendar in UTC
    _b64("0001-01-01T00:00:00+23:59|5"),  # before its start
    base64.urlsafe_b64encode(b"\xff\xfe\x00|1").decode(),
    12345,
    1.5,
    True,
    b"cursor",
    ["cursor"],
]


@pytest.mark.parametrize("cursor", BAD_CURSORS, ids=lambda value: repr(value)[:30])
def test_bad_cursor_is_a_field_error_and_changes_nothing(db, make_users, cursor):
    owner, referred = make_users(2, now=T0)
    activate_invite(db, referred.id, owner.invite_code, now=T1)
    before = snapshot(db)
    with pytest.raises(InvalidCursor) as caught:
        list_referrals(db, owner.id, cursor=cursor, limit=5)
    assert caught.value.field == "cursor"
    assert snapshot(db) == before


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1, 10**9, "5", "", None, True, False, 5.0, 1.5, [5]])
def test_bad_limit_is_a_field_error_and_changes_nothing(db, make_users, limit):
    owner, referred = make_users(2, now=T0)
    activate_invite(db, referred.id, owner.invite_code, now=T1)
    before = snapshot(db)
    with pytest.raises(InvalidLimit) as caught:
        list_referrals(db, owner.id, limit=limit)
    assert caught.value.field == "limit"
    assert snapshot(db) == before


def test_cursor_from_another_time_zone_means_the_same_instant(db, make_users):
    owner, *referred = make_users(4, now=T0)
    for number, user in enumerate(referred):
        activate_invite(db, user.id, owner.invite_code, now=T1 + timedelta(seconds=number))
    newest_id = referred[-1].id
    utc_cursor = encode_cursor(T1 + timedelta(seconds=2), newest_id)
    moscow = (T1 + timedelta(seconds=2)).astimezone(timezone(timedelta(hours=3)))
    moscow_cursor = _b64(f"{moscow.isoformat()}|{newest_id}")
    assert list_referrals(db, owner.id, cursor=utc_cursor) == list_referrals(db, owner.id, cursor=moscow_cursor)
    assert [item.phone_number for item in list_referrals(db, owner.id, cursor=utc_cursor).items] == [
        referred[1].phone_number,
        referred[0].phone_number,
    ]
