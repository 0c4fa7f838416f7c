"""Live referral updates: "someone entered your code" reaches the owner's open profile.

Each open profile page holds one :class:`Subscription` in its worker's :class:`Registry`
(owner id -> the subscriptions of that worker's open pages). An activation is published
by owner id; the feed wakes exactly the subscriptions of that owner. Two transports
behind one interface:

* :class:`RedisFeed` (``REFLEX_REDIS_URL`` set, several workers or instances): a worker
  holds ONE pub/sub connection, a pattern subscription to every owner's channel, while it
  has at least one open page, and fans each message out through its registry. Publishing
  goes through a small bounded pool, so a worker uses at most :data:`REDIS_CONNECTIONS`
  Redis connections, whatever the number of tabs. The listener reconnects with backoff
  after Redis goes away; meanwhile pages keep working, and when it is back every page of
  the worker refreshes once (activations made during the outage were not heard).
* :class:`InProcessFeed` (no Redis, one worker): the registry alone.

A subscription waits on an :class:`asyncio.Event`: no timer while nothing happens. It
ends when the page closes: :meth:`ReferralFeed.close_session` (called when the page's
websocket disconnects, see ``infra/framework/reflex_socket.py``), a newer subscription of the same tab
(``page``, the client token: a reconnect or a second load) or the watcher itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from abc import ABC, abstractmethod
from collections import OrderedDict

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from referral_app.settings import settings

logger = logging.getLogger(__name__)

# Connections of a worker's live-update client: the listener's one and publishers'.
REDIS_CONNECTIONS = 4
# Waits of the listener between reconnection attempts: doubling from the first to the last.
RECONNECT_DELAYS = (0.1, 5.0)
# How long a new subscriber waits for the listener's subscription to be confirmed (a
# page may miss an update published before that; with Redis away it does not wait longer).
READY_TIMEOUT_SECONDS = 2
# Websocket sessions closed lately, remembered so that a watcher started after its page
# had gone (a late event) ends at once; session ids are random, never reused.
_CLOSED_SESSIONS_KEPT = 4096


class Subscription:
    """One open page's interest in one person's referrals (see :meth:`Registry.add`)."""

    __slots__ = ("owner_id", "page", "session", "_registry", "_event", "closed")

    def __init__(self, registry: Registry, owner_id: int, page: str | None, session: str | None) -> None:
        self._registry, self.owner_id, self.page, self.session = registry, owner_id, page, session
        self._event = asyncio.Event()
        self.closed = False

    async def wait(self) -> bool:
        """Until an update arrives (True; a burst counts once) or the subscription ends (False)."""
        if not self.closed:
            await self._event.wait()
        self._event.clear()
        return not self.closed

    def notify(self) -> None:
        self._event.set()

    def close(self) -> None:
        """Leave the registry and wake the waiter (idempotent)."""
        self._registry.remove(self)


class Registry:
    """A worker's open pages by owner id, tab (client token) and websocket session."""

    def __init__(self) -> None:
        self.by_owner: dict[int, set[Subscription]] = {}
        self.by_page: dict[str, Subscription] = {}
        self.by_session: dict[str, set[Subscription]] = {}
        self._closed_sessions: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(subscriptions) for subscriptions in self.by_owner.values())

    def add(self, owner_id: int, page: str | None = None, session: str | None = None) -> Subscription:
        """A new subscription; a tab's older one ends (latest wins); closed at once when
        its session has already closed."""
        subscription = Subscription(self, owner_id, page, session)
        if session is not None and session in self._closed_sessions:
            subscription.closed = True
            subscription.notify()
            return subscription
        if page is not None and (older := self.by_page.get(page)) is not None:
            older.close()
        self.by_owner.setdefault(owner_id, set()).add(subscription)
        if page is not None:
            self.by_page[page] = subscription
        if session is not None:
            self.by_session.setdefault(session, set()).add(subscription)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        if subscription.closed:
            return
        subscription.closed = True
        subscription.notify()
        _discard(self.by_owner, subscription.owner_id, subscription)
        if subscription.page is not None and self.by_page.get(subscription.page) is subscription:
            del self.by_page[subscription.page]
        if subscription.session is not None:
            _discard(self.by_session, subscription.session, subscription)

    def close_session(self, session: str) -> None:
        """The websocket ``session`` is gone: end its subscriptions, and any made later."""
        self._closed_sessions[session] = None
        while len(self._closed_sessions) > _CLOSED_SESSIONS_KEPT:
            self._closed_sessions.popitem(last=False)
        for subscription in list(self.by_session.get(session, ())):
            subscription.close()

    def notify(self, owner_id: int) -> None:
        for subscription in self.by_owner.get(owner_id, ()):
            subscription.notify()

    def notify_all(self) -> None:
        for subscriptions in self.by_owner.values():
            for subscription in subscriptions:
                subscription.notify()


def _discard(index: dict, key, subscription: Subscription) -> None:
    subscriptions = index.get(key)
    if subscriptions is not None:
        subscriptions.discard(subscription)
        if not subscriptions:
            del index[key]


class ReferralFeed(ABC):
    """The interface: publish by owner id, subscribe a page, end a closed page's subscriptions."""

    def __init__(self) -> None:
        self.registry = Registry()

    @abstractmethod
    async def publish(self, owner_id: int) -> None:
        """Wake the subscriptions of ``owner_id``'s pages, on every worker."""

    async def subscribe(self, owner_id: int, page: str | None = None, session: str | None = None) -> Subscription:
        """Subscribe the page of tab ``page`` (its client token) on websocket ``session``."""
        return self.registry.add(owner_id, page, session)

    def close_session(self, session: str) -> None:
        self.registry.close_session(session)


class InProcessFeed(ReferralFeed):
    """Fan-out inside one process (the single-worker setup)."""

    async def publish(self, owner_id: int) -> None:
        self.registry.notify(owner_id)


class _RedisRegistry(Registry):
    def __init__(self, feed: RedisFeed) -> None:
        super().__init__()
        self.feed = feed

    def remove(self, subscription: Subscription) -> None:
        super().remove(subscription)
        if not self.by_owner:
            self.feed._stop_listener()


class RedisFeed(ReferralFeed):
    """Redis pub/sub: one pattern subscription per worker, fanned out to its open pages.

    ``prefix`` names the channels (``<prefix>:<owner id>``) and the client
    (``CLIENT LIST``). Pub/sub channels are shared by all of a server's databases, so
    the default prefix carries the database number: apps on other databases of the
    same Redis (tests, benchmarks, other deployments) do not hear each other.
    """

    def __init__(self, url: str, prefix: str | None = None) -> None:
        super().__init__()
        self.registry = _RedisRegistry(self)
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=REDIS_CONNECTIONS, timeout=2, socket_connect_timeout=2, socket_keepalive=True
        )
        db = pool.connection_kwargs.get("db", 0)
        self.prefix = prefix or f"referral_app:{db}:referrals"
        pool.connection_kwargs["client_name"] = self.prefix
        self.client = aioredis.Redis.from_pool(pool)
        self._listener: asyncio.Task | None = None
        self._ready = asyncio.Event()

    def channel(self, owner_id: int) -> str:
        return f"{self.prefix}:{owner_id}"

    async def publish(self, owner_id: int) -> None:
        try:
            await self.client.publish(self.channel(owner_id), "1")
        except RedisError as error:  # the activation stands; only the live update is lost
            logger.warning("live update not published: %s", type(error).__name__)

    async def subscribe(self, owner_id: int, page: str | None = None, session: str | None = None) -> Subscription:
        subscription = self.registry.add(owner_id, page, session)
        if subscription.closed:
            return subscription
        if self._listener is None or self._listener.done():
            self._ready = asyncio.Event()
            # A context of its own: the listener serves every page of the worker for as long as
            # it runs, so what it logs is the server's, not the first page's client's
            # (infra/logs.py limits records by the client of the request or event they run in).
            self._listener = asyncio.get_running_loop().create_task(
                self._listen(self._ready), name="live-updates", context=contextvars.Context()
            )
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(asyncio.shield(self._ready.wait()), READY_TIMEOUT_SECONDS)
            except TimeoutError:
                pass  # Redis is away: the page works, and refreshes once the listener is back
        return subscription

    def _stop_listener(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None

    async def _listen(self, ready: asyncio.Event) -> None:
        """Hear every owner's channel on one connection, for as long as the task runs."""
        delay, heard_before = RECONNECT_DELAYS[0], False
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.psubscribe(f"{self.prefix}:*")
                async for message in pubsub.listen():
                    if message["type"] == "psubscribe":
                        delay = RECONNECT_DELAYS[0]
                        if heard_before:  # what was published meanwhile was not heard
                            logger.info("live updates: listening again")
                            self.registry.notify_all()
                        heard_before = True
                        ready.set()
                    elif message["type"] == "pmessage":
                        owner = message["channel"].rsplit(b":", 1)[-1]
                        if owner.isdigit():
                            self.registry.notify(int(owner))
            except (RedisError, OSError) as error:
                logger.warning("live updates: Redis listener lost (%s); again in %.1f s", type(error).__name__, delay)
            except Exception:  # keep listening for the pages whatever went wrong
                logger.exception("live updates: listener failed; again in %.1f s", delay)
            finally:
                ready.clear()
                try:
                    await asyncio.shield(pubsub.aclose())
                except (RedisError, OSError):
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_DELAYS[1])


def make_feed() -> ReferralFeed:
    return RedisFeed(settings.redis_url) if settings.redis_url else InProcessFeed()


referral_feed: ReferralFeed = make_feed()
