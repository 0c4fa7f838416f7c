"""Races: the database, not a check-then-write, decides when requests arrive at the same moment.

Every test starts its threads together with a barrier; each thread has its own Session.
These run on SQLite (one writer at a time) and on PostgreSQL (real concurrency).
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import text
from sqlmodel import Session

from referral_app.domain import auth, users
from referral_app.domain.errors import TooManyAttempts
from referral_app.domain.invites import generate_invite_code
from referral_app.domain.referrals import activate_invite, list_referrals
from tests.conftest import IS_POSTGRES
from tests.domain.helpers import TEST_IP, T0, phone, rows_of

JOIN_TIMEOUT = 120


def run_together(engine, workers: int, work) -> list[tuple[str, object]]:
    """Run ``work(session, index)`` in ``workers`` threads released at the same instant.

    Returns, per thread, ``("ok", result)`` or ``("error", exception)``.
    """
    barrier = threading.Barrier(workers)
    results: list[tuple[str, object] | None] = [None] * workers

    def runner(index: int) -> None:
        with Session(engine, expire_on_commit=False) as session:
            try:
                barrier.wait(timeout=30)
                results[index] = ("ok", work(session, index))
            except Exception as exc:  # noqa: BLE001 - reported to the test below
                results[index] = ("error", exc)

    threads = [threading.Thread(target=runner, args=(index,)) for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


def outcome(result: tuple[str, object]) -> str:
    kind, value = result
    return "ok" if kind == "ok" else type(value).__name__


def assert_invited_counts_are_consistent(db) -> None:
    """Each user's kept ``invited_count`` equals the number of users who entered their code."""
    rows = db.exec(
        text(
            "SELECT u.id, u.invited_count, (SELECT count(*) FROM users r WHERE r.invited_by_id = u.id) "
            "FROM users u"
        )
    ).all()
    db.rollback()
    assert [(user_id, kept) for user_id, kept, _real in rows] == [(user_id, real) for user_id, _kept, real in rows]


def assert_no_loops(db) -> None:
    links = dict(db.exec(text("SELECT id, invited_by_id FROM users")).all())
    db.rollback()
    for start in links:
        seen, current = set(), start
        while current is not None:
            assert current not in seen, f"invite loop through user {current}"
            seen.add(current)
            current = links[current]


# --- activation ---------------------------------------------------------------------------


@pytest.mark.parametrize("same_code", [False, True], ids=["different codes", "same code"])
def test_simultaneous_activations_by_one_user_give_one_success(db, engine, make_users, same_code):
    *owners, me = make_users(21, now=T0)
    me_id = me.id
    codes = [owners[0].invite_code] * 20 if same_code else [owner.invite_code for owner in owners]
    phone_of_code = {owner.invite_code: owner.phone_number for owner in owners}
    db.rollback()

    results = run_together(engine, 20, lambda session, i: activate_invite(session, me_id, codes[i], now=T0))

    assert Counter(map(outcome, results)) == {"ok": 1, "AlreadyActivated": 19}
    [winner] = [codes[i] for i, result in enumerate(results) if result[0] == "ok"]
    [me_row] = [row for row in rows_of(db, "users") if row["id"] == me_id]
    assert me_row["invited_by_id"] == next(o.id for o in owners if o.invite_code == winner)
    counts = {row["phone_number"]: row["invited_count"] for row in rows_of(db, "users")}
    assert counts[phone_of_code[winner]] == 1
    assert sum(counts.values()) == 1
    assert_invited_counts_are_consistent(db)


def test_simultaneous_activations_of_one_code_are_all_counted(db, engine, make_users):
    owner, *others = make_users(21, now=T0)
    owner_id, code, other_ids = owner.id, owner.invite_code, [other.id for other in others]
    db.rollback()

    results = run_together(engine, 20, lambda session, i: activate_invite(session, other_ids[i], code, now=T0))

    assert Counter(map(outcome, results)) == {"ok": 20}
    assert_invited_counts_are_consistent(db)
    assert [row["invited_count"] for row in rows_of(db, "users") if row["id"] == owner_id] == [20]
    assert len(list_referrals(db, owner_id, limit=100).items) == 20


def test_two_users_entering_each_others_codes_at_once_never_make_a_loop(db, engine, make_users):
    for _round in range(20):
        x, y = make_users(2, now=T0)
        pairs = [(x.id, y.invite_code), (y.id, x.invite_code)]
        db.rollback()

        results = run_together(engine, 2, lambda session, i: activate_invite(session, *pairs[i], now=T0))

        assert sorted(map(outcome, results)) == ["InviteLoop", "ok"]
    assert_no_loops(db)
    assert_invited_counts_are_consistent(db)


def test_three_users_closing_a_triangle_at_once_never_make_a_loop(db, engine, make_users):
    """A→B, B→C and C→A at the same time: at most two of them can succeed."""
    for _round in range(10):
        a, b, c = make_users(3, now=T0)
        moves = [(a.id, b.invite_code), (b.id, c.invite_code), (c.id, a.invite_code)]
        db.rollback()

        results = run_together(engine, 3, lambda session, i: activate_invite(session, *moves[i], now=T0))

        assert Counter(map(outcome, results)) == {"ok": 2, "InviteLoop": 1}
    assert_no_loops(db)


def test_two_chains_closing_a_loop_at_once_never_make_a_loop(db, engine, make_users):
    """a←b and c←d exist; a enters d's code while c enters b's: a→d→c→b→a if both won."""
    for _round in range(10):
        a, b, c, d = make_users(4, now=T0)
        activate_invite(db, b.id, a.invite_code, now=T0)
        activate_invite(db, d.id, c.invite_code, now=T0)
        moves = [(a.id, d.invite_code), (c.id, b.invite_code)]
        db.rollback()

        results = run_together(engine, 2, lambda session, i: activate_invite(session, *moves[i], now=T0))

        assert sorted(map(outcome, results)) == ["InviteLoop", "ok"]
    assert_no_loops(db)
    assert_invited_counts_are_consistent(db)


def test_random_simultaneous_activations_keep_the_forest_loop_free(db, engine, make_users):
    """Many users entering random codes at once, round after round: never a loop, counts exact."""
    import random

    people = make_users(12, now=T0)
    ids, codes = [p.id for p in people], [p.invite_code for p in people]
    db.rollback()
    chooser = random.Random(7)
    for _round in range(6):
        moves = [(ids[i], codes[chooser.randrange(len(codes))]) for i in range(len(ids))]
        run_together(engine, len(moves), lambda session, i: activate_invite(session, *moves[i], now=T0))
        assert_no_loops(db)
    assert_invited_counts_are_consistent(db)


@pytest.mark.skipif(not IS_POSTGRES, reason="SQLite has one writer: no second transaction can commit meanwhile")
def test_activation_starts_over_when_the_owners_tree_joins_another_meanwhile(db, engine, make_users, monkeypatch):
    """The owner's root is attached to another tree between the lookup and the lock."""
    from referral_app.domain import referrals

    owner, other_root, me = make_users(3, now=T0)
    db.rollback()
    real_lock, taken = referrals.lock, []

    def lock_after_the_tree_changed(session, key):
        if session is db:
            if not taken:
                with Session(engine) as meanwhile:  # the owner (a root until now) enters a code
                    activate_invite(meanwhile, owner.id, other_root.invite_code, now=T0)
            taken.append(key)
        real_lock(session, key)

    monkeypatch.setattr(referrals, "lock", lock_after_the_tree_changed)
    assert activate_invite(db, me.id, owner.invite_code, now=T0).id == owner.id

    def trees(*user_ids):
        return [f"referral-tree:{user_id}" for user_id in sorted(user_ids)]

    # First try: me and the owner's old root (the owner); second: me and the new root.
    assert taken == trees(me.id, owner.id) + trees(me.id, other_root.id)
    [me_row] = [row for row in rows_of(db, "users") if row["id"] == me.id]
    assert me_row["invited_by_id"] == owner.id
    assert_no_loops(db)
    assert_invited_counts_are_consistent(db)


# --- sign-in ------------------------------------------------------------------------------


def request_codes(db, sms, phones: list[str]) -> list[str]:
    codes = [auth.request_code(db, number, TEST_IP, now=T0).code for number in phones]
    db.rollback()
    return codes


def test_simultaneous_first_sign_ins_create_distinct_users(db, sms, engine):
    phones = [phone(n) for n in range(1, 51)]
    codes = request_codes(db, sms, phones)

    results = run_together(engine, 50, lambda session, i: auth.sign_in(session, phones[i], codes[i], now=T0))

    assert Counter(map(outcome, results)) == {"ok": 50}
    rows = rows_of(db, "users")
    assert sorted(row["phone_number"] for row in rows) == phones
    assert len({row["invite_code"] for row in rows}) == 50
    assert {result.phone_number: result.invite_code for _, result in results} == {
        row["phone_number"]: row["invite_code"] for row in rows
    }


def test_simultaneous_sign_ins_drawing_the_same_invite_codes_all_succeed(db, sms, engine, monkeypatch):
    """Every invite code is handed out twice, so sign-ins collide with each other and must retry."""
    lock, calls = threading.Lock(), []
    pool = [generate_invite_code() for _ in range(100)]

    def colliding_generator() -> str:
        with lock:
            calls.append(len(calls))
            return pool[calls[-1] // 2]

    monkeypatch.setattr(users, "generate_invite_code", colliding_generator)
    phones = [phone(n) for n in range(1, 31)]
    codes = request_codes(db, sms, phones)

    results = run_together(engine, 30, lambda session, i: auth.sign_in(session, phones[i], codes[i], now=T0))

    assert Counter(map(outcome, results)) == {"ok": 30}
    rows = rows_of(db, "users")
    assert len(rows) == 30
    assert len({row["invite_code"] for row in rows}) == 30
    assert len(calls) >= 59  # 30 distinct codes out of pairs: every other draw collided and was retried


def test_one_code_used_by_simultaneous_requests_signs_in_once(db, sms, engine):
    [code] = request_codes(db, sms, [phone(1)])

    results = run_together(engine, 10, lambda session, i: auth.sign_in(session, phone(1), code, now=T0))

    assert Counter(map(outcome, results)) == {"ok": 1, "WrongCode": 9}
    assert len(rows_of(db, "users")) == 1
    assert rows_of(db, "confirmation_codes") == []


def test_simultaneous_wrong_guesses_never_exceed_five_attempts(db, sms, engine):
    [code] = request_codes(db, sms, [phone(1)])
    wrong = f"{(int(code) + 1) % 10000:04d}"

    results = run_together(engine, 20, lambda session, i: auth.sign_in(session, phone(1), wrong, now=T0))

    # Attempts 1-4 are plain misses, the 5th kills the code, the rest find it dead.
    assert Counter(map(outcome, results)) == {"WrongCode": 4, "TooManyAttempts": 16}
    [row] = rows_of(db, "confirmation_codes")
    assert row["attempts"] == 5
    with pytest.raises(TooManyAttempts):
        auth.sign_in(db, phone(1), code, now=T0)
    assert rows_of(db, "users") == []
