"""What the logs need from Reflex's event machinery (Reflex 0.10.1 internals).

Two reaches, for ``infra/logs.py`` (which owns the policy: request ids, per-client limits):

* :func:`event_request_id` / :func:`event_client_ip`: the Reflex event being handled, read
  from ``reflex_base.event.context.EventContext`` (a context variable, not a public module):
  its transaction id ``txid`` (the request id of every record made while it runs) and its
  ``router_data``, where Reflex puts the socket's resolved client address
  (``RouteVar.CLIENT_IP``, public as ``rx.constants``), never the client's payload.
* :func:`start_worker_tasks_in`: Reflex starts its worker-wide tasks (its lock-release and
  socket-record subscribers, its lost-and-found relay) with ``reflex.utils.tasks.ensure_task``
  from the first page event that needs them, so they inherited that client's context. The
  wrapper gives ``ensure_task`` a ``task_context`` of ours unless the caller names one, in the
  modules of :data:`REFLEX_TASK_MODULES`. Fails closed (:class:`FrameworkChanged`) when
  ``ensure_task`` has no ``task_context`` or a module no longer uses Reflex's.

Guard tests: ``tests/framework/test_reflex_logging.py``.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
from collections.abc import Callable

from referral_app.infra.framework import expect, parameters

_MODULE = "reflex_logging"
# Reflex's modules that start worker-wide tasks with ``reflex.utils.tasks.ensure_task``.
REFLEX_TASK_MODULES = ("reflex.istate.manager.redis", "reflex.utils.token_manager")


@functools.cache
def _event_context():
    try:
        from reflex_base.event.context import EventContext
    except ImportError:  # pragma: no cover - Reflex is a dependency
        return None
    return EventContext


@functools.cache
def _client_ip_route_var() -> str | None:
    try:
        from reflex.constants import RouteVar  # public: rx.constants
    except ImportError:  # pragma: no cover - Reflex is a dependency
        return None
    return str(RouteVar.CLIENT_IP)


def event_request_id() -> str | None:
    """The transaction id of the Reflex event being handled; None outside one."""
    event_context = _event_context()
    if event_context is None:
        return None
    try:
        return event_context.get().txid or None
    except LookupError:
        return None


def event_client_ip() -> str | None:
    """The client address of the Reflex event being handled (from its router data); None outside one."""
    event_context = _event_context()
    if event_context is None:
        return None
    try:
        return event_context.get().router_data.get(_client_ip_route_var()) or None
    except LookupError:
        return None


def start_worker_tasks_in(context: Callable[[], contextvars.Context]) -> None:
    """Make Reflex start its worker-wide tasks (``ensure_task``) in ``context()`` unless it
    names a context itself; once. :class:`FrameworkChanged` if Reflex changed."""
    from reflex.utils import tasks

    original = tasks.ensure_task
    expect("task_context" in parameters(original), "reflex", "reflex.utils.tasks.ensure_task (no task_context)",
           _MODULE)

    @functools.wraps(original)
    def ensure_task(*args, task_context=None, **kwargs):
        return original(*args, task_context=context() if task_context is None else task_context, **kwargs)

    ensure_task.referral_app_detached = True  # type: ignore[attr-defined]
    for name in REFLEX_TASK_MODULES:
        module = importlib.import_module(name)
        current = getattr(module, "ensure_task", None)
        if getattr(current, "referral_app_detached", False):
            continue
        expect(current is original, "reflex", f"{name}.ensure_task (it is not Reflex's ensure_task)", _MODULE)
        module.ensure_task = ensure_task
