"""Live referral updates: "someone entered your code" reaches the owner's open profile.

One interface, two transports: Redis pub/sub when ``REFLEX_REDIS_URL`` is set (so it works
across backend workers), an in-process fan-out otherwise (one worker).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from referral_app.settings import settings

logger = logging.getLogger(__name__)


class Subscription(Protocol):
    async def wait(self, timeout: float) -> bool:
        """True when an update arrived within ``timeout`` seconds."""

    async def close(self) -> None: ...


class ReferralFeed(Protocol):
    async def publish(self, owner_id: int) -> None: ...

    async def subscribe(self, owner_id: int) -> Subscription: ...


class _QueueSubscription:
    def __init__(self, feed: InProcessFeed, owner_id: int) -> None:
        self.feed, self.owner_id, self.queue = feed, owner_id, asyncio.Queue()

    async def wait(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return False
        while not self.queue.empty():  # several updates at once need one refresh
            self.queue.get_nowait()
        return True

    async def close(self) -> None:
        self.feed.subscribers[self.owner_id].discard(self.queue)


class InProcessFeed:
    """Fan-out inside one process (the single-worker setup)."""

    def __init__(self) -> None:
        self.subscribers: dict[int, set[asyncio.Queue]] = defaultdict(set)

    async def publish(self, owner_id: int) -> None:
        for queue in list(self.subscribers.get(owner_id, ())):
            queue.put_nowait(None)

    async def subscribe(self, owner_id: int) -> Subscription:
        subscription = _QueueSubscription(self, owner_id)
        self.subscribers[owner_id].add(subscription.queue)
        return subscription


def _channel(owner_id: int) -> str:
    return f"referral_app:referrals:{owner_id}"


class _RedisSubscription:
    def __init__(self, pubsub) -> None:
        self.pubsub = pubsub

    async def wait(self, timeout: float) -> bool:
        message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        return message is not None

    async def close(self) -> None:
        await self.pubsub.aclose()


class RedisFeed:
    """Redis pub/sub: every worker's subscribers hear every activation."""

    def __init__(self, url: str) -> None:
        self.client = aioredis.Redis.from_url(url, socket_connect_timeout=2)

    async def publish(self, owner_id: int) -> None:
        try:
            await self.client.publish(_channel(owner_id), "1")
        except RedisError as error:  # the activation stands; only the live update is lost
            logger.warning("live update not published: %s", type(error).__name__)

    async def subscribe(self, owner_id: int) -> Subscription:
        pubsub = self.client.pubsub()
        await pubsub.subscribe(_channel(owner_id))
        return _RedisSubscription(pubsub)


def make_feed() -> ReferralFeed:
    return RedisFeed(settings.redis_url) if settings.redis_url else InProcessFeed()


referral_feed: ReferralFeed = make_feed()
