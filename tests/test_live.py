"""The live-update feed: in-process and Redis pub/sub behave the same through one interface;
Redis costs one connection per worker, whatever the number of pages."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
import redis

from referral_app.infra import live
from referral_app.infra.live import InProcessFeed, RedisFeed, make_feed
from referral_app.settings import settings

REDIS_URL = "redis://127.0.0.1:6379/12"  # this module's own database of the machine's Redis


def _prefix() -> str:
    """Channels (and the client name) of one test's own: pub/sub ignores database numbers."""
    return f"test-live-{uuid.uuid4().hex[:12]}"


def _redis_feed() -> RedisFeed:
    return RedisFeed(REDIS_URL, prefix=_prefix())


def _connections(prefix: str) -> list[dict]:
    """The feed's connections to Redis, by the client name it gives them (``CLIENT LIST``)."""
    return [client for client in redis.Redis.from_url(REDIS_URL).client_list() if client.get("name") == prefix]


FEEDS = pytest.mark.parametrize("make", [InProcessFeed, _redis_feed], ids=["in-process", "redis"])


@FEEDS
def test_a_subscriber_hears_only_its_own_owner(make):
    async def scenario():
        feed = make()
        owner, other = 1001, 1002
        mine = await feed.subscribe(owner)
        theirs = await feed.subscribe(other)
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(mine.wait(), 0.05)
            await feed.publish(owner)
            assert await asyncio.wait_for(mine.wait(), 2) is True
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(theirs.wait(), 0.2)
            for _ in range(3):  # a burst needs one refresh
                await feed.publish(owner)
            assert await asyncio.wait_for(mine.wait(), 2) is True
        finally:
            mine.close()
            theirs.close()

    asyncio.run(scenario())


@FEEDS
def test_each_activation_reaches_exactly_its_owners_pages(make):
    """300 pages of 100 people (some with several tabs); every activation wakes exactly the
    pages of its owner, and closing them all leaves nothing in the registry."""

    async def scenario():
        feed = make()
        pages = {}
        for number in range(300):
            owner = 5000 + number % 100
            pages[f"tab-{number}"] = (owner, await feed.subscribe(owner, page=f"tab-{number}", session=f"sid-{number}"))
        woken: dict[str, int] = {}

        async def watch(name, subscription):
            while await subscription.wait():
                woken[name] = woken.get(name, 0) + 1

        watchers = [asyncio.create_task(watch(name, subscription)) for name, (_owner, subscription) in pages.items()]
        try:
            for owner in random.Random(14).sample(range(5000, 5100), 20):
                woken.clear()
                await feed.publish(owner)
                expected = {name for name, (page_owner, _s) in pages.items() if page_owner == owner}
                for _ in range(200):
                    if set(woken) == expected:
                        break
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.05)  # time for a wrong one to show up
                assert set(woken) == expected and set(woken.values()) == {1}, (owner, woken)
        finally:
            for number in range(300):
                feed.close_session(f"sid-{number}")
            await asyncio.wait_for(asyncio.gather(*watchers), 5)  # every watcher ended
        assert len(feed.registry) == 0
        assert (feed.registry.by_owner, feed.registry.by_page, feed.registry.by_session) == ({}, {}, {})

    asyncio.run(scenario())


def test_redis_uses_one_connection_for_all_pages_and_none_once_they_close():
    async def scenario():
        feed = _redis_feed()
        subscriptions = [await feed.subscribe(owner, page=f"tab-{owner}") for owner in range(1, 501)]
        for owner in range(1, 501, 7):
            await feed.publish(owner)
        listening = _connections(feed.prefix)
        subscribed = [client for client in listening if int(client["psub"]) or int(client["sub"])]
        # One pattern subscription for 500 pages, at most the pool's few connections in all.
        assert len(subscribed) == 1 and int(subscribed[0]["psub"]) == 1 and int(subscribed[0]["sub"]) == 0, listening
        assert len(listening) <= live.REDIS_CONNECTIONS
        for subscription in subscriptions:
            subscription.close()
        for _ in range(100):
            if not any(int(client["psub"]) for client in _connections(feed.prefix)):
                break
            await asyncio.sleep(0.02)
        assert not any(int(client["psub"]) or int(client["sub"]) for client in _connections(feed.prefix))
        assert redis.Redis.from_url(REDIS_URL).pubsub_numsub(f"{feed.prefix}:1") == [(f"{feed.prefix}:1".encode(), 0)]
        await feed.client.aclose()

    asyncio.run(scenario())


def test_a_newer_subscription_of_the_same_tab_ends_the_older_one():
    async def scenario():
        feed = InProcessFeed()
        first = await feed.subscribe(7, page="tab", session="sid-1")
        second = await feed.subscribe(7, page="tab", session="sid-2")  # the tab reconnected
        assert await asyncio.wait_for(first.wait(), 1) is False
        feed.close_session("sid-1")  # the old socket's late goodbye does not end the new one
        await feed.publish(7)
        assert await asyncio.wait_for(second.wait(), 1) is True
        assert feed.registry.by_owner == {7: {second}}

    asyncio.run(scenario())


def test_a_subscription_made_after_its_socket_closed_ends_at_once():
    async def scenario():
        feed = InProcessFeed()
        feed.close_session("sid-gone")
        late = await feed.subscribe(7, page="tab", session="sid-gone")
        assert await asyncio.wait_for(late.wait(), 1) is False
        assert len(feed.registry) == 0

    asyncio.run(scenario())


def test_the_listener_comes_back_after_redis_goes_away():
    """Its connection is killed (as a Redis restart would): it subscribes again with
    backoff, the pages refresh once (they may have missed something), then hear updates."""

    async def scenario():
        feed = _redis_feed()
        page = await feed.subscribe(3)
        admin = redis.Redis.from_url(REDIS_URL)
        try:
            killed = None
            for client in _connections(feed.prefix):
                if int(client["psub"]):
                    admin.execute_command("CLIENT", "KILL", "ID", client["id"])
                    killed = client["id"]
            assert killed is not None
            assert await asyncio.wait_for(page.wait(), 10) is True  # the catch-up refresh
            await feed.publish(3)
            assert await asyncio.wait_for(page.wait(), 5) is True
            assert [client["id"] for client in _connections(feed.prefix) if int(client["psub"])] != [killed]
        finally:
            page.close()
            await feed.client.aclose()

    asyncio.run(scenario())


def test_pages_wait_without_redis_and_publishing_does_not_fail(caplog):
    async def scenario():
        feed = RedisFeed("redis://127.0.0.1:1/0", prefix=_prefix())
        page = await feed.subscribe(1)  # does not raise nor hang: the page works without live updates
        await feed.publish(1)
        page.close()

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert "live update not published" in caplog.text


def test_the_transport_follows_the_setting(monkeypatch):
    monkeypatch.setattr(settings, "redis_url", "")
    assert isinstance(make_feed(), InProcessFeed)
    monkeypatch.setattr(settings, "redis_url", REDIS_URL)
    feed = make_feed()
    assert isinstance(feed, RedisFeed) and feed.prefix == "referral_app:12:referrals"
