"""Guards of reflex_logging.py (referral_app/infra/framework/): what the logs read from Reflex's
event context (the request id and the client of a page event), and Reflex's worker-wide tasks
started in a context of their own.

Each fails if Reflex changes what the module reaches into.
"""

from __future__ import annotations

import contextvars

import pytest

from referral_app.infra import logs
from referral_app.infra.framework import FrameworkChanged, reflex_logging


def test_a_page_events_request_id_and_client_come_from_reflexs_event_context():
    """Reflex keeps the event being handled in ``EventContext`` (its ``txid`` and its
    ``router_data``, where it puts the socket's client address under ``RouteVar.CLIENT_IP``)."""
    import dataclasses

    from reflex.constants import RouteVar
    from reflex_base.event.context import EventContext

    assert {"txid", "router_data"} <= {field.name for field in dataclasses.fields(EventContext)}
    assert reflex_logging.event_request_id() is None and reflex_logging.event_client_ip() is None  # outside one

    def run():
        EventContext.set(EventContext(token="tab", state_manager=None, enqueue_impl=None,
                                      router_data={str(RouteVar.CLIENT_IP): "203.0.113.9"}))
        return reflex_logging.event_request_id(), reflex_logging.event_client_ip(), logs.current_client()

    txid, ip, client = contextvars.copy_context().run(run)
    assert txid and ip == "203.0.113.9" and client == "203.0.113.9"


def test_reflex_starts_its_worker_tasks_through_the_detaching_wrapper(monkeypatch):
    """The guard: Reflex's worker-wide tasks still come from ``ensure_task`` in these modules,
    with a ``task_context``; anything else stops the app at import."""
    import importlib

    import referral_app.referral_app  # noqa: F401

    for name in reflex_logging.REFLEX_TASK_MODULES:
        assert getattr(importlib.import_module(name).ensure_task, "referral_app_detached", False), name
    import reflex.utils.token_manager as token_manager

    monkeypatch.setattr(token_manager, "ensure_task", lambda *args, **kwargs: None)
    with pytest.raises(RuntimeError, match="token_manager.ensure_task"):
        logs.detach_reflex_worker_tasks()


def test_the_refusal_names_reflex_its_version_and_the_module(monkeypatch):
    from reflex.utils import tasks

    monkeypatch.setattr(tasks, "ensure_task", lambda coro_function, *args: None)  # no task_context
    with pytest.raises(FrameworkChanged) as refused:
        logs.detach_reflex_worker_tasks()
    assert str(refused.value).startswith("Reflex 0.10.1 changed reflex.utils.tasks.ensure_task (no task_context)")
    assert "reflex_logging.py must be updated before this app may start" in str(refused.value)
