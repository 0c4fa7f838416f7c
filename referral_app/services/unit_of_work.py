"""The unit of work: one database transaction per use case, run in a worker thread,
whose committed domain events are handed to the message bus afterwards.

Every service runs its database work through :func:`run` (reads and writes, ORM session)
or :func:`read` (reads only, a Core connection: about a tenth less CPU than a session for
a profile read); a long read that streams its result (the staff console's CSV exports)
uses :func:`stream`. Both hand the work to a worker thread of anyio's pool (at most 40 per
process; the database pool holds ``DB_POOL_SIZE`` + ``DB_MAX_OVERFLOW`` connections and
threads beyond that wait for one), so no SQL runs on the event loop
(``referral_app.infra.db.forbid_on_event_loop`` refuses a checkout there).

Events (``referral_app.domain.events``) recorded in a transaction that commits are
dispatched after the unit of work ends, in the order recorded; those of a transaction that
rolls back are dropped. A domain function may commit more than once (the activation
retries, sign-in commits before it checks the account): each commit keeps its events.
If the work raises after a commit, the events committed so far are still dispatched, then
the error goes on: what was committed happened.

"Architecture Patterns with Python" (Percival, Gregory), ch. 6 and 8;
``cosmicpython/code``: ``service_layer/unit_of_work.py``, ``messagebus.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy.engine import Connection
from sqlmodel import Session

from referral_app.domain.events import COMMITTED, PENDING, DomainEvent
from referral_app.infra import db as database
from referral_app.services.bus import bus

T = TypeVar("T")
logger = logging.getLogger(__name__)


class UnitOfWorkSession(Session):
    """A session whose commits keep the transaction's domain events and whose rollbacks drop them."""

    def commit(self) -> None:
        super().commit()
        pending = self.info.pop(PENDING, None)
        if pending:
            self.info.setdefault(COMMITTED, []).extend(pending)

    def rollback(self) -> None:
        super().rollback()
        self.info.pop(PENDING, None)

    def finish(self) -> list[DomainEvent]:
        """Commit what the work left open and return every committed event, in order.

        With no transaction open (the domain committed, or only read) there is nothing to
        commit, and events recorded since describe committed work: they are kept as such.
        (``Session.commit()`` would open and commit an empty transaction: ~10 µs for nothing.)
        """
        if self.in_transaction():
            self.commit()
        else:
            self.info.setdefault(COMMITTED, []).extend(self.info.pop(PENDING, ()))
        return self.info.pop(COMMITTED, [])


def _in_thread(work: Callable[[Session], T]) -> tuple[T | None, list[DomainEvent], BaseException | None]:
    """Run ``work`` in one session and commit; return its result, the committed events, and
    the error it raised (None when it succeeded)."""
    with UnitOfWorkSession(database.engine, expire_on_commit=False) as db:
        try:
            result = work(db)
            events = db.finish()
        except BaseException as error:  # noqa: BLE001 - handed back to the caller's task
            db.info.pop(PENDING, None)
            return None, db.info.pop(COMMITTED, []), error
        return result, events, None


async def run(work: Callable[[Session], T]) -> T:
    """Run ``work(session)`` as one unit of work in a worker thread; commit; dispatch the events.

    ``work`` calls the domain with the session and returns a plain value (it may also
    commit, and must not keep the session). Errors it raises (``DomainError``, the
    database's) reach the caller after the events of any earlier commit are dispatched.
    A caller cancelled meanwhile (a closed page, a server shutting down) gets its
    ``CancelledError`` at once, but the unit of work still ends and its committed events
    are still dispatched: a thread cannot be stopped, and what it commits happened.
    """
    finishing = asyncio.ensure_future(_run_and_dispatch(work))
    try:
        return await asyncio.shield(finishing)
    except asyncio.CancelledError:
        finishing.add_done_callback(_drop_outcome)
        raise


async def _run_and_dispatch(work: Callable[[Session], T]) -> T:
    result, events, error = await anyio.to_thread.run_sync(_in_thread, work)
    if events:
        await bus.dispatch(events)
    if error is not None:
        raise error
    return result  # type: ignore[return-value]


def _drop_outcome(finished: asyncio.Future) -> None:
    """Nobody waits for a cancelled caller's unit of work: its error is only logged."""
    if not finished.cancelled() and finished.exception() is not None:
        logger.warning("a unit of work whose caller was cancelled failed", exc_info=finished.exception())


def _read_in_thread(work: Callable[[Connection], T]) -> T:
    with database.engine.connect() as connection:  # rolled back at the end: nothing is written
        return work(connection)


async def read(work: Callable[[Connection], T]) -> T:
    """Run ``work(connection)``, which only reads with Core statements, in a worker thread."""
    return await anyio.to_thread.run_sync(_read_in_thread, work)


_END: Any = object()  # what next() gives when a stream's items are all read


async def stream(work: Callable[[Session], Iterator[T]]) -> AsyncIterator[T]:
    """Yield the items of ``work(session)``, a lazy read (a generator), each one pulled in a
    worker thread: a long read (an export) streams without holding the event loop.

    ``work`` must end its transaction after each item (``db.rollback()``), so that no
    connection is held while the caller handles the item (or is slow to take the next).
    Nothing is committed and no event is dispatched: a stream only reads.
    """
    session = Session(database.engine, expire_on_commit=False)
    try:
        items = await anyio.to_thread.run_sync(work, session)
        while (item := await anyio.to_thread.run_sync(next, items, _END)) is not _END:
            yield item
    finally:
        with anyio.CancelScope(shield=True):  # a client that went away still gets its session closed
            await anyio.to_thread.run_sync(session.close)

