"""Wake-ups for the webhook delivery loops of this process.

A loop waits on its :func:`waiting` event between rounds; :func:`nudge` (a subscriber of
the events that write to the outbox, ``referral_app.services.subscribers``) sets every
loop's event, so a new event is sent at once rather than at the next poll.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
_waiters_lock = threading.Lock()


def nudge(_event: object = None) -> None:
    """Wake every delivery loop of this process (safe from any thread and any loop)."""
    with _waiters_lock:
        waiters = list(_waiters)
    for loop, wakeup in waiters:
        try:
            loop.call_soon_threadsafe(wakeup.set)
        except RuntimeError:  # that loop has closed
            pass


@contextmanager
def waiting() -> Iterator[asyncio.Event]:
    """An event that :func:`nudge` sets, registered while the block runs (on a running loop)."""
    entry = (asyncio.get_running_loop(), asyncio.Event())
    with _waiters_lock:
        _waiters.add(entry)
    try:
        yield entry[1]
    finally:
        with _waiters_lock:
            _waiters.discard(entry)
