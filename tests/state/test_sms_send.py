"""The SMS send of the sign-in page runs outside the page's state lock (SPEC §16).

The first tests run the page's events through Reflex's own event processor and its Redis
state manager, on a redis-server this module starts on a free port, with a lock that
expires after 1 s and an SMS gateway that takes 2.5 s: as in production with a slow
gateway. The others call the handlers directly (tests/state/conftest.py).
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from sqlalchemy import func
from sqlmodel import select

from referral_app.domain import sms as sms_module
from referral_app.domain.sms import DemoSmsSender, WebhookSmsSender
from referral_app.i18n import translate
from referral_app.models import CodeSend, ConfirmationCode, User
from referral_app.settings import settings
from referral_app.state.login import LoginState
from tests.private_services import REDIS_SERVER, private_redis_url
from tests.state.conftest import make_state, run

LOCK_EXPIRATION_MS = 1000
GATEWAY_SECONDS = 2.5  # longer than the lock lives
PHONE, OTHER_PHONE = "+79123456789", "+79123456780"


def count(db, model) -> int:
    value = db.exec(select(func.count()).select_from(model)).one()
    db.rollback()
    return value


# --- through Reflex's event processor and Redis state manager ---------------------------------


@pytest.fixture(scope="module")
def redis_url():
    if REDIS_SERVER is None:
        pytest.skip("needs redis-server")
    with private_redis_url() as url:
        yield url


class Page:
    """One browser tab's events, run by Reflex's event processor on a Redis state manager."""

    def __init__(self, manager, processor, token: str) -> None:
        self.manager, self.processor, self.token = manager, processor, token
        self.router = {
            "pathname": "/",
            "asPath": "/",
            "query": {},
            "token": token,
            "sid": f"sid-{token}",
            "headers": {"origin": "http://127.0.0.1:3000", "host": "127.0.0.1:3000"},
            "ip": "127.0.0.1",
        }

    async def send(self, handler: str, **payload) -> None:
        from reflex_base.event import Event

        name = f"{LoginState.get_full_name()}.{handler}"
        await self.processor.enqueue(self.token, Event(name=name, router_data=self.router, payload=payload))

    async def state(self) -> LoginState:
        from reflex.istate.manager.token import BaseStateToken

        root = await self.manager.get_state(BaseStateToken(ident=self.token, cls=LoginState))
        return await root.get_state(LoginState)

    async def wait_for(self, condition, within: float = 15.0) -> LoginState:
        deadline = time.monotonic() + within
        while True:
            state = await self.state()
            if condition(state):
                return state
            if time.monotonic() > deadline:
                sending = getattr(state, "sending", "-")
                raise AssertionError(f"the page never got there: step={state.step!r}, sending={sending}, "
                                     f"error={state.error_code!r}, demo_code={state.demo_code!r}")
            await asyncio.sleep(0.1)

    async def lock_is_free(self) -> bool:
        """Whether the page's state lock can be taken now (waits at most 0.5 s)."""
        from reflex.istate.manager.token import BaseStateToken

        try:
            async with asyncio.timeout(0.5):
                async with self.manager.modify_state(BaseStateToken(ident=self.token, cls=LoginState)):
                    return True
        except TimeoutError:
            return False


class ProbingSender:
    """The simulated gateway (GATEWAY_SECONDS), noting at each send whether the page's state
    lock was free meanwhile; sends to ``hold`` wait until ``release`` is set."""

    def __init__(self, page_of) -> None:
        self.gateway = DemoSmsSender(delay_seconds=(GATEWAY_SECONDS, GATEWAY_SECONDS))
        self.page_of = page_of
        self.lock_free: list[bool] = []
        self.hold: set[str] = set()
        self.release = asyncio.Event()

    async def send(self, phone_number: str, text: str) -> None:
        self.lock_free.append(await self.page_of().lock_is_free())
        if phone_number in self.hold:
            await self.release.wait()
        await self.gateway.send(phone_number, text)


def on_processor(redis_url, monkeypatch, scenario):
    """Run ``scenario(page, sender)`` with the page's events going through Reflex."""
    from redis.asyncio import Redis
    from reflex.istate.manager.redis import StateManagerRedis
    from reflex_base.event.processor.base_state_processor import BaseStateEventProcessor

    import referral_app.referral_app  # noqa: F401 - the app: registers its states and events

    pages: list[Page] = []
    sender = ProbingSender(lambda: pages[0])
    monkeypatch.setattr(sms_module, "sms_sender", sender)

    async def main():
        redis = Redis.from_url(redis_url)
        manager = StateManagerRedis(redis=redis, lock_expiration=LOCK_EXPIRATION_MS, lock_warning_threshold=500)
        processor = BaseStateEventProcessor().configure(state_manager=manager)
        try:
            async with processor:
                pages.append(Page(manager, processor, f"tab-{time.monotonic_ns()}"))
                sender.release = asyncio.Event()
                await scenario(pages[0], sender)
        finally:
            await manager.close()

    asyncio.run(main())


@pytest.mark.e2e
def test_a_gateway_slower_than_the_lock_leaves_the_page_working(db, redis_url, monkeypatch):
    """The page moves to the code step at once, its state lock is free during the send, and
    after a send longer than the lock lives, typing the code signs in."""

    async def scenario(page: Page, sender: ProbingSender):
        await page.send("request_code", form_data={"phone": PHONE})
        state = await page.wait_for(lambda s: s.step == "code", within=2)  # before the gateway answered
        assert state.sending and state.demo_code == "" and state.code_left == 0
        assert await page.lock_is_free()  # while the send is under way
        # Another event of the page meanwhile is handled, not stuck behind the send.
        await page.send("code_typed", value="1")
        state = await page.wait_for(lambda s: not s.sending and s.demo_code, within=GATEWAY_SECONDS + 10)
        assert sender.lock_free == [True]
        assert state.step == "code" and state.error_code == ""
        assert settings.code_ttl_seconds - 3 <= state.code_left <= settings.code_ttl_seconds  # counting from now
        await page.send("code_typed", value=state.demo_code)
        await page.wait_for(lambda s: s.step == "done", within=10)

    on_processor(redis_url, monkeypatch, scenario)
    assert count(db, User) == 1


@pytest.mark.e2e
def test_a_second_click_while_sending_sends_nothing_more(db, redis_url, monkeypatch, send_limits):
    async def scenario(page: Page, sender: ProbingSender):
        await page.send("request_code", form_data={"phone": PHONE})
        await page.send("request_code", form_data={"phone": PHONE})
        await page.wait_for(lambda s: s.step == "code" and s.sending, within=5)
        state = await page.state()
        state._resend_until = 0.0  # even with the page's own countdown out of the way
        await page.send("resend_code")
        await page.send("request_code", form_data={"phone": PHONE})
        await page.wait_for(lambda s: not s.sending and s.demo_code, within=GATEWAY_SECONDS + 10)
        assert len(sender.lock_free) == 1

    on_processor(redis_url, monkeypatch, scenario)
    assert count(db, CodeSend) == 1


@pytest.mark.e2e
def test_a_result_for_a_number_the_page_left_is_not_shown(db, redis_url, monkeypatch):
    """"Another number" while the SMS is on its way, then a second number: the first send's
    outcome, when it comes, does not change the page."""

    async def scenario(page: Page, sender: ProbingSender):
        sender.hold.add(PHONE)
        await page.send("request_code", form_data={"phone": PHONE})
        await page.wait_for(lambda s: s.step == "code" and s.sending, within=5)
        await page.send("change_phone")
        await page.wait_for(lambda s: s.step == "phone" and not s.sending, within=5)
        await page.send("request_code", form_data={"phone": OTHER_PHONE})
        state = await page.wait_for(lambda s: s.phone_number == OTHER_PHONE and s.demo_code, within=GATEWAY_SECONDS + 10)
        shown = state.demo_code
        sender.release.set()  # the first number's gateway answers now
        await asyncio.sleep(GATEWAY_SECONDS + 1)
        state = await page.state()
        assert (state.phone_number, state.demo_code, state.sending) == (OTHER_PHONE, shown, False)

    on_processor(redis_url, monkeypatch, scenario)


# --- called directly ----------------------------------------------------------------------------


class TimedSender:
    """The simulated gateway with a delay; notes what the page showed while it waited."""

    def __init__(self, state: LoginState, seconds: float) -> None:
        self.gateway = DemoSmsSender(delay_seconds=(seconds, seconds))
        self.state = state
        self.seen: list[tuple] = []

    async def send(self, phone_number: str, text: str) -> None:
        await self.gateway.send(phone_number, text)
        self.seen.append((self.state.sending, self.state.sms_late, self.state.sending_text, self.state.code_left))


def test_a_late_sms_is_named_and_the_countdown_waits_for_the_gateway(db, monkeypatch):
    monkeypatch.setattr(settings, "sms_late_notice_seconds", 0.3)
    state = make_state(LoginState)
    sender = TimedSender(state, 1.0)
    monkeypatch.setattr(sms_module, "sms_sender", sender)
    run(state.request_code({"phone": PHONE}))

    [(sending, late, text, code_left)] = sender.seen
    assert sending and late and text == translate("login.sms_late")
    assert code_left == 0  # no countdown before the gateway accepted
    assert not state.sending and not state.sms_late
    assert state.code_left == settings.code_ttl_seconds and state.demo_code


class HeadingSender(TimedSender):
    """Notes the line under the code step's heading while the gateway works."""

    async def send(self, phone_number: str, text: str) -> None:
        await self.gateway.send(phone_number, text)
        self.seen.append(self.state.code_sent_text)


def test_the_line_under_the_heading_follows_the_send(db, monkeypatch, send_limits):
    """Not "we sent a code" while it is on its way, nor after it failed (designer's review)."""
    state = make_state(LoginState)
    state.language = "ru"
    sender = HeadingSender(state, 0.2)
    monkeypatch.setattr(sms_module, "sms_sender", sender)
    run(state.request_code({"phone": PHONE}))
    assert sender.seen == [translate("login.code_sending_to", "ru")] == ["Отправляем код в SMS на номер"]
    assert state.code_sent_text == translate("login.code_sent_to", "ru")

    monkeypatch.setattr(sms_module, "sms_sender", _failing_sender())
    state = make_state(LoginState)
    run(state.request_code({"phone": OTHER_PHONE}))
    assert state.send_failed
    assert state.code_sent_text == translate("login.code_send_failed_to", "en") == "Could not send the SMS to"


def _failing_sender() -> WebhookSmsSender:
    with socket.socket() as probe:  # a port that was free a moment ago and is closed now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return WebhookSmsSender(f"http://127.0.0.1:{port}/sms", timeout_seconds=0.5, retries=0)


def test_a_failed_send_is_named_and_a_new_code_can_be_asked_at_once(db, monkeypatch, send_limits):
    monkeypatch.setattr(sms_module, "sms_sender", _failing_sender())
    state = make_state(LoginState)
    run(state.request_code({"phone": PHONE}))

    assert state.step == "code" and state.send_failed and not state.sending
    assert state.error_text == translate("login.sms_failed")
    assert state.resend_in == 0 and state.retry_after == 0 and state.demo_code == ""
    assert count(db, ConfirmationCode) == 0

    monkeypatch.setattr(sms_module, "sms_sender", DemoSmsSender(delay_seconds=(0.0, 0.0)))
    run(state.resend_code())  # at once: the failed send holds no cooldown
    assert not state.send_failed and state.error_text == "" and state.demo_code
    assert state.code_left == settings.code_ttl_seconds and state.resend_in > 0
    run(state.confirm_code({"code": state.demo_code}))
    assert state.step == "done"


@pytest.fixture
def hanging_gateway(monkeypatch):
    """A real HTTP SMS gateway on 127.0.0.1 that never answers (tests/domain/test_sms.py)."""
    from tests.domain.test_sms import Gateway

    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = Gateway()
    server.script = ["hang"] * 10
    server.thread.start()
    yield server
    server.release.set()
    server.server.shutdown()
    server.server.server_close()


def test_a_gateway_past_the_deadline_fails_in_time(db, monkeypatch, hanging_gateway):
    monkeypatch.setattr(sms_module, "sms_sender", hanging_gateway.sender(timeout=5.0, retries=2))  # alone: 15 s
    monkeypatch.setattr(settings, "sms_send_timeout_seconds", 0.5)
    state = make_state(LoginState)
    start = time.monotonic()
    run(state.request_code({"phone": PHONE}))
    assert time.monotonic() - start < 5
    assert state.send_failed and state.error_text == translate("login.sms_failed")
    assert count(db, ConfirmationCode) == 0


def test_a_send_whose_worker_died_ends_as_failed(db, monkeypatch):
    """A page reloaded after its worker died (the send's task with it) does not wait forever."""
    state = make_state(LoginState)
    run(state.request_code({"phone": PHONE}))
    state.sending, state.demo_code, state._sending_until = True, "", time.time() - 1  # as the dead task left it
    run(state.on_load())
    assert not state.sending and state.send_failed and state.resend_in == 0


def test_the_send_cannot_be_started_by_the_browser_alone(db):
    """The background event sends only what the page's own request handed it."""
    state = make_state(LoginState)
    assert run(LoginState.send_code.fn(state)) == []
    assert count(db, ConfirmationCode) == 0 and state.step == "phone"
