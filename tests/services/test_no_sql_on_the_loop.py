"""No SQL runs on the event loop: the engine refuses a connection on a thread running one,
and the services do their database work in worker threads."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import text

from referral_app.infra import db as database
from referral_app.infra.db import SqlOnEventLoop
from referral_app.services import auth, profile, unit_of_work

PHONE = "+79123456789"


def test_a_checkout_on_the_event_loop_is_refused(engine):
    async def on_the_loop():
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    with pytest.raises(SqlOnEventLoop, match="event loop"):
        asyncio.run(on_the_loop())


def test_a_checkout_off_the_loop_is_allowed(engine):
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1


def test_services_run_their_database_work_off_the_loop(db, monkeypatch):
    threads: list[int] = []
    make_session = unit_of_work.UnitOfWorkSession

    class Recording(make_session):
        def __init__(self, *args, **kwargs):
            threads.append(threading.get_ident())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(unit_of_work, "UnitOfWorkSession", Recording)

    async def use_cases() -> int:
        loop_thread = threading.get_ident()
        issued = await auth.request_code(PHONE, "198.51.100.7")
        token = await auth.sign_in(PHONE, issued.code)
        view = await profile.read_profile(token)
        assert view.profile.phone_number == PHONE
        return loop_thread

    loop_thread = asyncio.run(use_cases())
    assert threads and loop_thread not in threads


def test_every_engine_the_app_makes_carries_the_guard(tmp_path):
    made = database.make_engine(f"sqlite:///{tmp_path / 'guarded.db'}")
    try:
        with pytest.raises(SqlOnEventLoop):
            asyncio.run(_connect(made))
    finally:
        made.dispose()


async def _connect(engine) -> None:
    with engine.connect():
        pass
