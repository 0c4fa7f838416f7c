"""Log volume per client is bounded (referral_app/infra/logs.py, issue 18 "Bounded everything"):
a token bucket per client address, records beyond it counted (a summary line, a Prometheus
counter) and not written, client text cut short, frontend reports limited per client."""

from __future__ import annotations

import contextvars
import logging
import time

import pytest
from prometheus_client import REGISTRY

from referral_app.infra import logs
from referral_app.infra.logs import ClientLogLimiter, frontend_exception_handler
from referral_app.settings import settings
from tests.test_logs import log_output  # noqa: F401  (the fixture)

SUPPRESSED = "referral_log_records_suppressed_total"


def suppressed_count(logger_name: str) -> float:
    return REGISTRY.get_sample_value(SUPPRESSED, {"logger": logger_name}) or 0.0


@pytest.fixture
def limiter(monkeypatch):
    """The app's limiter, fresh, with summaries only when a test flushes them."""
    fresh = ClientLogLimiter(settings.log_records_per_client_minute, timer=False)
    monkeypatch.setattr(logs, "client_records", fresh)
    return fresh


def as_client(address: str | None, function, *args):
    """Run ``function`` as RequestIdMiddleware runs a request of ``address``."""
    context = contextvars.copy_context()

    def run():
        logs._client_var.set((address, 50000) if address else None)
        return function(*args)

    return context.run(run)


def as_page_event(address: str, tab: str, function, *args):
    """Run ``function`` as Reflex runs a page event of the tab ``tab`` (its EventContext,
    whose router data Reflex fills with the socket's address)."""
    from reflex_base.event.context import EventContext

    context = contextvars.copy_context()

    def run():
        EventContext.set(EventContext(token=tab, state_manager=None, enqueue_impl=None, router_data={"ip": address}))
        return function(*args)

    return context.run(run)


# The bucket


def test_a_client_gets_a_burst_then_its_rate_and_the_rest_is_counted():
    limiter = ClientLogLimiter(10, timer=False)
    before = suppressed_count("test.bucket")
    now = 1000.0
    assert [limiter.allow("198.51.100.1", "test.bucket", now) for _ in range(12)] == [True] * 10 + [False] * 2
    assert suppressed_count("test.bucket") - before == 2
    assert not limiter.allow("198.51.100.1", "test.bucket", now + 5)  # 10 a minute: one every 6 s
    assert limiter.allow("198.51.100.1", "test.bucket", now + 6.1)
    assert not limiter.allow("198.51.100.1", "test.bucket", now + 6.2)
    assert limiter.allow("198.51.100.1", "test.bucket", now + 600)  # a full bucket again, not more
    assert sum(limiter.allow("198.51.100.1", "test.bucket", now + 600) for _ in range(20)) == 9


def test_one_client_never_uses_up_another_clients_budget():
    limiter = ClientLogLimiter(10, timer=False)
    for _ in range(10_000):
        limiter.allow("198.51.100.1", "test.bucket", 1000.0)
    assert limiter.allow("198.51.100.2", "test.bucket", 1000.0)
    assert limiter.allow("2001:db8::/64", "test.bucket", 1000.0)


def test_the_summary_says_how_many_were_suppressed_from_whom(log_output):
    stream = log_output()
    limiter = ClientLogLimiter(5, summary_seconds=60, timer=False)
    for _ in range(205):
        limiter.allow("198.51.100.1", "reflex.app", 1000.0)
    limiter.allow("198.51.100.1", "engineio.server", 1010.0)
    assert limiter.flush(1059.0) == []  # not due yet
    (summary,) = limiter.flush(1060.0)
    assert (summary.client, summary.count, summary.by_logger) == (
        "198.51.100.1", 201, {"reflex.app": 200, "engineio.server": 1}
    )
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert "suppressed 201 log records caused by client 198.51.100.1 in the last 60 s" in lines[0]
    assert "loggers=engineio.server:1,reflex.app:200" in lines[0]
    assert limiter.flush(1200.0) == [] and limiter.buckets == {}  # counted once; idle clients forgotten


def test_the_summary_comes_by_itself_when_the_flood_stops(log_output):
    stream = log_output()
    limiter = ClientLogLimiter(1, summary_seconds=0.2)  # its timer on, as in the app
    for _ in range(3):
        limiter.allow("198.51.100.9", "test.timer")
    deadline = time.monotonic() + 10
    while "suppressed 2 log records" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "suppressed 2 log records caused by client 198.51.100.9" in stream.getvalue()


def test_the_clients_remembered_are_bounded():
    limiter = ClientLogLimiter(1, timer=False, max_clients=100)
    for n in range(5000):
        limiter.allow(f"10.0.{n // 256}.{n % 256}", "test.bucket", 1000.0)
    assert len(limiter.buckets) == 100


# The logging layer


def test_records_a_client_causes_are_limited_and_the_servers_own_are_not(log_output, limiter):
    stream = log_output()
    client_logger, server_logger = logging.getLogger("test.client_caused"), logging.getLogger("test.server")
    before = suppressed_count("test.client_caused")
    as_client("198.51.100.7", lambda: [client_logger.warning("bad frame %d", n) for n in range(2000)])
    for n in range(50):
        server_logger.warning("the server's own %d", n)
    as_client("198.51.100.7", lambda: [client_logger.info("not a warning %d", n) for n in range(30)])
    text = stream.getvalue()
    budget = settings.log_records_per_client_minute
    assert text.count("bad frame") == budget
    assert text.count("the server's own") == 50 and text.count("not a warning") == 30
    assert suppressed_count("test.client_caused") - before == 2000 - budget
    (summary,) = limiter.flush(everything=True)
    assert summary.client == "198.51.100.7" and summary.count == 2000 - budget
    assert f"suppressed {2000 - budget} log records caused by client 198.51.100.7" in stream.getvalue()


def test_a_peer_that_is_no_ip_address_is_not_limited(log_output, limiter):
    """All such peers would be one client (a Unix socket, a test client): only their
    frontend reports are limited, together."""
    stream = log_output()
    as_client("testclient", lambda: [logging.getLogger("test.client_caused").warning("w %d", n) for n in range(50)])
    assert stream.getvalue().count("test.client_caused") == 50
    as_client("testclient", lambda: [frontend_exception_handler(Exception("report")) for _ in range(50)])
    assert stream.getvalue().count("frontend exception: report") == settings.log_records_per_client_minute


def test_an_ipv6_client_counts_by_its_64_network(log_output, limiter):
    stream = log_output()
    noisy = logging.getLogger("test.client_caused")
    for n in range(100):
        as_client(f"2001:db8:1:2::{n + 1:x}", noisy.warning, "from a /64")
    as_client("2001:db8:1:3::1", noisy.warning, "from the next /64")
    assert stream.getvalue().count("from a /64") == settings.log_records_per_client_minute
    assert "from the next /64" in stream.getvalue()


def test_a_suppressed_record_costs_no_formatting(log_output, limiter):
    """A flood is decided before its message is built or its traceback rendered."""
    log_output()
    rendered = []

    class Costly:
        def __str__(self):
            rendered.append(1)
            return "x" * 100_000

    noisy = logging.getLogger("test.client_caused")

    def flood():
        for _ in range(500):
            try:
                raise ValueError("client's junk")
            except ValueError:
                noisy.exception("handler error %s", Costly())

    as_client("198.51.100.7", flood)
    assert len(rendered) == settings.log_records_per_client_minute


def test_a_huge_client_record_is_cut_shorter_than_the_servers(log_output, limiter):
    stream = log_output()
    noisy = logging.getLogger("test.client_caused")

    def huge():
        try:
            raise ValueError("y" * 50_000)
        except ValueError:
            noisy.exception("event %s", "x" * 1_000_000)

    as_client("198.51.100.7", huge)
    text = stream.getvalue()
    assert len(text) < logs.CLIENT_MESSAGE_MAX_CHARS + logs.CLIENT_TRACEBACK_MAX_CHARS + 1_000, len(text)
    assert "more characters" in text
    logging.getLogger("test.server").error("event %s", "x" * 100_000)
    assert len(stream.getvalue()) - len(text) > logs.MAX_MESSAGE_CHARS  # the server's own: the wider cap


def test_engineio_and_socketio_write_through_the_one_handler_only(log_output):
    """Their own console handlers wrote each socket error a second time, past every limit."""
    from referral_app.referral_app import app  # noqa: F401  (creates the socket server and its loggers)

    log_output()
    for name in ("engineio.server", "socketio.server", "reflex"):
        library_logger = logging.getLogger(name)
        assert library_logger.handlers == [] and library_logger.propagate, name


# Frontend error reports: per client address


def test_six_tabs_of_one_client_cannot_silence_another_clients_reports(log_output, limiter):
    """Issue 18: the limit was 30 a minute for everybody, 5 per tab: six tabs used it up."""
    stream = log_output()
    for tab in range(6):
        for _ in range(50):
            as_page_event("198.51.100.66", f"tab-{tab}", frontend_exception_handler, Exception("noise from one client"))
    as_page_event("203.0.113.5", "tab-real", frontend_exception_handler, Exception("a real error elsewhere"))
    text = stream.getvalue()
    assert "a real error elsewhere" in text
    assert text.count("noise from one client") <= settings.log_records_per_client_minute


def test_reports_on_the_socket_itself_count_per_client_too(log_output, limiter):
    """Reflex's ``client_error`` event is handled on the socket (no page event): its client
    is the socket's, as RequestIdMiddleware set it."""
    stream = log_output()
    for _ in range(100):
        as_client("198.51.100.66", frontend_exception_handler, Exception("[SID: a] noise"))
    as_client("203.0.113.5", frontend_exception_handler, Exception("[SID: b] real"))
    assert "[SID: b] real" in stream.getvalue()
    assert stream.getvalue().count("[SID: a] noise") == settings.log_records_per_client_minute


# Work that outlives the request or page event that started it


@pytest.mark.e2e
def test_the_live_update_listener_started_by_a_flooding_client_still_reports_redis_trouble(log_output, limiter):
    """The worker's one live-update listener is started by whichever page subscribes first,
    so it used to run in that page event's context: every warning it wrote later (Redis
    lost, for every page of the worker) counted against that one client, and a client that
    had used up its budget silenced them. It runs in a context of its own."""
    import asyncio
    import uuid

    import redis as sync_redis

    from referral_app.infra.live import RedisFeed

    from tests.private_services import needs_redis, private_redis_url as private_redis

    if needs_redis.args[0]:
        pytest.skip("needs redis-server")
    stream = log_output()
    prefix = f"test-logs-{uuid.uuid4().hex[:12]}"
    flooder = logging.getLogger("test.flooder")

    async def scenario():
        feed = RedisFeed(redis_url, prefix=prefix)
        page = await feed.subscribe(7)  # the first page of the worker: starts the listener
        for n in range(settings.log_records_per_client_minute + 10):
            flooder.warning("unknown event %d", n)  # the same client uses up its budget
        admin = sync_redis.Redis.from_url(redis_url)
        try:
            for client in admin.client_list():
                if client.get("name") == prefix and int(client["psub"]):
                    admin.execute_command("CLIENT", "KILL", "ID", client["id"])
            assert await asyncio.wait_for(page.wait(), 10) is True  # listening again
        finally:
            page.close()
            await feed.client.aclose()
            admin.close()

    with private_redis() as redis_url:
        as_page_event("203.0.113.66", "tab-1", lambda: asyncio.run(scenario()))
    text = stream.getvalue()
    assert "unknown event 0" in text and "Redis listener lost" in text


@pytest.mark.e2e
def test_reflex_worker_tasks_started_by_a_flooding_client_still_report_redis_trouble(log_output, limiter):
    """Reflex's state manager starts its worker-wide Redis subscriber (lock releases) from
    the first page event that takes a lock, so the subscriber ran in that client's context:
    its errors (Redis lost, for every tab of the worker) counted against that client, and a
    client that had used up its budget silenced them. ``detach_reflex_worker_tasks`` (the
    app calls it at import) starts them in a context that counts against nobody."""
    import asyncio

    import redis as sync_redis
    from reflex.istate.manager import StateManager
    from reflex_base.config import get_config

    import referral_app.referral_app  # noqa: F401  (the app detaches Reflex's worker tasks at import)
    from tests.private_services import needs_redis, private_redis_url as private_redis

    if needs_redis.args[0]:
        pytest.skip("needs redis-server")
    stream = log_output()
    flooder = logging.getLogger("test.flooder")
    config = get_config()
    with private_redis() as redis_url, pytest.MonkeyPatch.context() as patch:
        patch.setenv("REFLEX_REDIS_URL", redis_url)
        patch.setattr(config, "redis_url", redis_url)
        patch.setattr(config, "state_manager_mode", config.state_manager_mode)

        async def scenario():
            manager = StateManager.create()
            manager._ensure_lock_task()  # as its first lock for a tab of this client does
            await manager._ensure_lock_task_subscribed(timeout=10)
            for n in range(settings.log_records_per_client_minute + 10):
                flooder.warning("unknown event %d", n)  # the same client uses up its budget
            admin = sync_redis.Redis.from_url(redis_url)
            try:
                admin.shutdown(nosave=True)  # this test's own redis-server goes away
            except sync_redis.ConnectionError:
                pass
            deadline = time.monotonic() + 10
            while "task error suppressed" not in stream.getvalue() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            manager._lock_task.cancel()

        as_page_event("203.0.113.67", "tab-2", lambda: asyncio.run(scenario()))
    text = stream.getvalue()
    assert "unknown event 0" in text and "_subscribe_lock_updates: task error suppressed" in text


# The access line


@pytest.mark.parametrize("json_lines", [False, True], ids=["text", "json"])
def test_a_huge_url_makes_a_short_access_line(log_output, json_lines):
    """Granian takes a request line of up to ~400 kB, and the access line is written for
    every request whatever the client's budget (INFO): it used to carry 8 kB of the URL in
    its message and, in JSON, the whole URL again in ``path``. Both are cut to
    ``ACCESS_TARGET_MAX_CHARS`` (nothing needs more to recognise a request)."""
    import json

    from fastapi.testclient import TestClient

    from referral_app.referral_app import api

    stream = log_output(json_lines=json_lines)
    with TestClient(api, client=("198.51.100.8", 50000)) as client:
        client.get("/api/v1/" + "a" * 30_000, params={"q": "b" * 30_000})  # httpx: 64 kB at most
    (line,) = [line for line in stream.getvalue().splitlines() if "referral_app.requests" in line]
    assert len(line.encode()) < 2 * logs.ACCESS_TARGET_MAX_CHARS + 1000
    if json_lines:
        entry = json.loads(line)
        assert entry["path"].startswith("/api/v1/aaa") and entry["status"] == 404
