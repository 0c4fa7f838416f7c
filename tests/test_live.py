"""The live-update feed: in-process and Redis pub/sub behave the same through one interface."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from referral_app.infra.live import InProcessFeed, RedisFeed, make_feed
from referral_app.settings import settings

REDIS_URL = "redis://127.0.0.1:6379/11"



@pytest.mark.parametrize("make", [InProcessFeed, lambda: RedisFeed(REDIS_URL)], ids=["in-process", "redis"])
def test_a_subscriber_hears_only_its_own_owner(make):
    async def scenario():
        feed = make()
        owner, other = uuid.uuid4().int % 10**9, uuid.uuid4().int % 10**9 + 1
        mine = await feed.subscribe(owner)
        theirs = await feed.subscribe(other)
        try:
            assert await mine.wait(0.05) is False
            await feed.publish(owner)
            assert await mine.wait(2) is True
            assert await theirs.wait(0.2) is False
            for _ in range(3):  # a burst needs one refresh
                await feed.publish(owner)
            assert await mine.wait(2) is True
        finally:
            await mine.close()
            await theirs.close()

    asyncio.run(scenario())


def test_a_closed_subscription_is_forgotten():
    async def scenario():
        feed = InProcessFeed()
        subscription = await feed.subscribe(7)
        await subscription.close()
        await feed.publish(7)
        assert feed.subscribers[7] == set()

    asyncio.run(scenario())


def test_redis_being_away_does_not_fail_the_publisher(caplog):
    asyncio.run(RedisFeed("redis://127.0.0.1:1/0").publish(1))
    assert "live update not published" in caplog.text


def test_the_transport_follows_the_setting(monkeypatch):
    monkeypatch.setattr(settings, "redis_url", "")
    assert isinstance(make_feed(), InProcessFeed)
    monkeypatch.setattr(settings, "redis_url", REDIS_URL)
    assert isinstance(make_feed(), RedisFeed)
