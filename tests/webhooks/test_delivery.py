"""Delivery to a real HTTP receiver on a loopback port: Standard Webhooks signatures, retries
through errors and an outage, restarts, two workers, and a worker that dies mid-delivery."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from referral_app.referral_app import api
from referral_app.domain import referrals
from referral_app.domain.webhooks import RetryPolicy
from referral_app.infra.webhooks import WebhookSender, run_delivery_loop
from tests.api.conftest import CLIENT_ADDRESS, bearer, sign_in
from tests.conftest import ROOT
from tests.domain.helpers import phone
from tests.webhooks.conftest import SECRET, attempt_rows, event_rows

FAST = RetryPolicy(
    base_delay=timedelta(seconds=0.05), max_delay=timedelta(seconds=0.2), retry_for=timedelta(hours=24),
    lease=timedelta(seconds=10),
)


def run_loop_in_thread(receiver_url: str, policy: RetryPolicy = FAST) -> threading.Thread:
    """The delivery loop in a thread of its own, until no event is pending."""

    async def main() -> None:
        sender = WebhookSender(receiver_url, SECRET, timeout=2)
        try:
            await run_delivery_loop(sender, policy, poll_seconds=0.05, until_idle=True)
        finally:
            await sender.aclose()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    return thread


def verify(received) -> dict:
    return Webhook(SECRET).verify(received.body, received.headers)


def attempts_counted(status: str) -> float:
    """``referral_webhook_attempts_total{status=...}`` as /metrics shows it (this process)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("referral_webhook_attempts_total", {"status": status}) or 0.0


def test_delivery_survives_an_error_and_an_outage_and_the_signature_verifies(db, webhooks_on, receiver, make_users):
    counted_before = {status: attempts_counted(status) for status in ("delivered", "pending")}
    receiver.answers = [500]
    [user] = make_users(1)
    loop = run_loop_in_thread(receiver.url)
    receiver.wait_for(1)
    receiver.stop()  # down for a while: connections are refused
    time.sleep(0.6)
    receiver.start()  # back, answering 204 from now on
    loop.join(30)
    assert not loop.is_alive()

    first, *_, last = receiver.received
    assert len(receiver.received) == 2 and first.body == last.body  # the same bytes every time
    for received in (first, last):
        assert received.headers["webhook-id"] == received.event["id"]
        assert received.headers["content-type"] == "application/json"
        assert verify(received) == received.event
    event = last.event
    assert event["type"] == "user.created" and event["data"]["user_id"] == user.id
    assert event["data"]["phone_number"] == user.phone_number

    [row] = event_rows(db)
    attempts = attempt_rows(db)
    assert row["status"] == "delivered" and row["attempts"] == len(attempts) >= 3
    assert attempts[0]["status_code"] == 500 and attempts[0]["error"] == "HTTP 500"
    refused = attempts[1:-1]
    # No answer: a refused connection (or a pooled one that the stopped server dropped).
    assert refused and all(a["status_code"] is None and a["error"] for a in refused)
    assert any(a["error"].startswith("ConnectError") for a in refused)
    assert attempts[-1]["status_code"] == 204 and attempts[-1]["error"] is None
    assert all(a["duration_ms"] >= 0 for a in attempts)
    assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
    # /metrics counts every attempt by what it made of the event.
    assert attempts_counted("delivered") - counted_before["delivered"] == 1
    assert attempts_counted("pending") - counted_before["pending"] == len(attempts) - 1


def test_a_changed_byte_or_another_secret_fails_verification(db, webhooks_on, receiver, make_users):
    make_users(1)
    run_loop_in_thread(receiver.url).join(30)
    [received] = receiver.received
    verify(received)
    for index in (0, len(received.body) // 2, len(received.body) - 1):
        flipped = bytearray(received.body)
        flipped[index] ^= 0x01
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(bytes(flipped), received.headers)
    for header in ("webhook-id", "webhook-timestamp"):
        changed = {**received.headers, header: received.headers[header] + "1"}
        with pytest.raises(WebhookVerificationError):
            Webhook(SECRET).verify(received.body, changed)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJD" * 8).verify(received.body, received.headers)


def test_events_arrive_in_order_per_user(db, webhooks_on, receiver, make_users):
    alice, bob, carol = make_users(3)
    referrals.activate_invite(db, bob.id, alice.invite_code)
    referrals.activate_invite(db, carol.id, bob.invite_code)
    receiver.answers = [500, 500, 500]  # the first three tries fail, whichever they are
    run_loop_in_thread(receiver.url).join(30)
    delivered = [r.event for r in receiver.received if r.event["id"] in {e["event_id"] for e in event_rows(db)}]
    assert_order_per_user(receiver.events())
    assert {e["type"] for e in delivered} == {"user.created", "referral.activated"}
    assert all(r["status"] == "delivered" for r in event_rows(db))


def assert_order_per_user(events: list[dict]) -> None:
    """Each user's user.created arrives (for the last time) before any activation naming them."""
    created_at: dict[int, int] = {}
    for position, event in enumerate(events):
        data = event["data"]
        if event["type"] == "user.created":
            created_at[data["user_id"]] = position
        else:
            for user_id in (data["user_id"], data["inviter_id"]):
                assert user_id in created_at, (event, "before the user.created of", user_id)


def worker(env: dict[str, str] | None = None) -> subprocess.Popen:
    """``python -m referral_app deliver-webhooks --until-idle`` in a process of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "referral_app", "deliver-webhooks", "--until-idle"],
        cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def worker_env(receiver, **extra) -> dict[str, str]:
    return {"WEBHOOK_URL": receiver.url, "WEBHOOK_SECRET": SECRET, "WEBHOOK_POLL_SECONDS": "0.1", **extra}


def test_events_committed_before_a_restart_are_delivered_after_it(db, webhooks_on, receiver):
    """The API commits a sign-up and an activation; no delivery runs in this process (as if it
    stopped right after the commit). A new process delivers both."""
    with TestClient(api, client=CLIENT_ADDRESS) as client:
        alice, bob = sign_in(client, phone(1)), sign_in(client, phone(2))
        code = client.get("/api/v1/profile/me/", headers=bearer(alice)).json()["invite_code"]
        assert client.post("/api/v1/profile/activate_invite/", json={"invite_code": code}, headers=bearer(bob)).status_code == 200
    assert [r["status"] for r in event_rows(db)] == ["pending"] * 3
    assert receiver.received == []
    process = worker(worker_env(receiver))
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert [e["type"] for e in receiver.events()] == ["user.created", "user.created", "referral.activated"]
    assert all(verify(r) for r in receiver.received)
    assert [r["status"] for r in event_rows(db)] == ["delivered"] * 3


def test_two_workers_deliver_each_event_exactly_once(db, webhooks_on, receiver, make_users):
    users = make_users(60)
    for inviter, invited in zip(users[::2], users[1::2]):
        referrals.activate_invite(db, invited.id, inviter.invite_code)
    expected = {r["event_id"] for r in event_rows(db)}
    assert len(expected) == 90
    workers = [worker(worker_env(receiver)), worker(worker_env(receiver))]
    for process in workers:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert sorted(ids) == sorted(expected)  # every event, each exactly once
    assert_order_per_user(receiver.events())
    # Both workers had a share (the claims interleave), and nothing was sent twice.
    attempts = attempt_rows(db)
    assert len(attempts) == 90, [a["error"] for a in attempts if a["error"]]
    assert all(r["status"] == "delivered" and r["attempts"] == 1 for r in event_rows(db))


def test_a_worker_that_dies_mid_delivery_leaves_the_event_to_another(db, webhooks_on, receiver, make_users):
    make_users(1)
    receiver.hold.clear()  # the receiver takes the request and does not answer yet
    env = worker_env(receiver, WEBHOOK_TIMEOUT_SECONDS="1")  # lease: 2 x 1 s + 5 s
    first = worker(env)
    receiver.wait_for(1)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    receiver.hold.set()
    [row] = event_rows(db)
    assert (row["status"], row["attempts"]) == ("pending", 1)  # leased by the dead worker
    started = time.monotonic()
    second = worker(env)
    output, _ = second.communicate(timeout=60)
    assert second.returncode == 0, output
    assert time.monotonic() - started >= 3  # it waited for the lease to end
    [row] = event_rows(db)
    assert (row["status"], row["attempts"]) == ("delivered", 2)
    assert [r.headers["webhook-id"] for r in receiver.received] == [row["event_id"]] * 2
    assert [a["attempt"] for a in attempt_rows(db)] == [2]  # the dead worker recorded nothing


def test_the_command_refuses_to_run_with_webhooks_off():
    process = subprocess.run(
        [sys.executable, "-m", "referral_app", "deliver-webhooks"], cwd=ROOT, env={**os.environ, "WEBHOOK_URL": ""},
        capture_output=True, text=True, timeout=60,
    )
    assert process.returncode == 2 and "WEBHOOK_URL" in process.stderr
