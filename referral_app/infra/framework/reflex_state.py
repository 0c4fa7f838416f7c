"""Reflex's page state: how it is pickled, hydrated and lost (Reflex 0.10.1 internals).

Four reaches, each used by a feature module that keeps its own logic:

* :func:`seal_state_pickles` (for ``infra/state_mac.py``, which owns the MAC): wraps
  ``reflex.state.BaseState._serialize`` / ``_deserialize`` (every page-state blob, in Redis
  through ``StateManagerRedis``, which calls ``BaseState._deserialize`` on the base class,
  and on disk through ``BaseStateToken``), ``reflex.istate.manager.token.StateToken.serialize``
  / ``deserialize`` (states under other token types), and replaces the ``pickle`` that
  ``reflex.utils.token_manager`` uses (only ``dumps`` and ``loads``). A blob the MAC rejects
  becomes ``StateSchemaMismatchError``, what Reflex's managers already read as "no usable
  state" (a fresh one). Fails closed.
* :func:`before_hydrate` (for ``state/base.py``'s session check): a Reflex app middleware
  (``App.add_middleware``; Reflex calls ``App._preprocess(state, event)`` from its event
  processor before it runs a handler) that runs a check before a ``hydrate`` /
  ``hydrate_and_load`` event sends a tab its whole state. Fails closed.
* :func:`client_storage_key` / :func:`hydrate_storage_value`: how Reflex names a
  client-storage var (``rx.LocalStorage``) among the values a page sends with
  ``hydrate_and_load`` (``reflex.compiler.utils._compile_client_storage_recursive``). A
  missing value reads as "" (the session check then fails closed: nobody is signed in).
* :func:`state_was_lost`: whether a state tree is one Reflex made afresh after losing the
  page's (Redis restarted, the state expired) while a background task had released it.
  Page state lives in Redis without persistence. Reflex then, for an event the page sends
  (it carries the page's route), rehydrates the fresh, routeless tree first (``hydrate``,
  the page's ``on_load``, then the event: ``BaseStateEventProcessor``,
  ``needs_to_rehydrate``); for a background task that re-enters the state (``async with
  self``) it sends the page the fresh tree's defaults and leaves it routeless
  (``StateProxy.__aenter__``). So a background task that finds the tree routeless returns an
  event to the page (``SessionState.resume``), which comes back with its route and gets the
  page rebuilt. ``tests/faults/test_redis_restart.py`` fails if Reflex stops behaving so.

Guard tests: ``tests/framework/test_reflex_state.py``.
"""

from __future__ import annotations

import functools
import inspect
import pickle
import types
from collections.abc import Callable
from typing import Any, BinaryIO

from referral_app.infra.framework import expect, parameters

_MODULE = "reflex_state"
# The marker each wrapped function carries, so a second install is a no-op.
_MARK = "__referral_state_mac__"


# --- Page-state pickles ------------------------------------------------------------


def _check_state_pickles(token_pickle: object) -> tuple[Any, Any, types.ModuleType]:
    """The three places :func:`seal_state_pickles` patches, after checking each has the expected shape."""
    import reflex.utils.token_manager as token_manager
    from reflex.istate.manager.token import BaseStateToken, StateToken
    from reflex.state import BaseState

    serialize, deserialize = BaseState.__dict__.get("_serialize"), BaseState.__dict__.get("_deserialize")
    expect(inspect.isfunction(serialize) and parameters(serialize) == ["self"],
           "reflex", "BaseState._serialize(self)", _MODULE)
    expect(isinstance(deserialize, classmethod) and parameters(deserialize.__func__) == ["cls", "data", "fp"],
           "reflex", "BaseState._deserialize(cls, data, fp)", _MODULE)
    for name, expected in (("serialize", ["cls", "state"]), ("deserialize", ["cls", "data", "fp"])):
        method = StateToken.__dict__.get(name)
        expect(isinstance(method, classmethod) and parameters(method.__func__) == expected,
               "reflex", f"StateToken.{name}({', '.join(expected)})", _MODULE)
        expect(isinstance(BaseStateToken.__dict__.get(name), classmethod), "reflex", f"BaseStateToken.{name}", _MODULE)
    current = getattr(token_manager, "pickle", None)
    expect(current is pickle or type(current) is type(token_pickle),
           "reflex", "reflex.utils.token_manager.pickle", _MODULE)
    return BaseState, StateToken, token_manager


def _read(data: bytes | None, fp: BinaryIO | None) -> bytes:
    if (data is None) == (fp is None):
        raise ValueError("Only one of `data` or `fp` must be provided")
    return data if data is not None else fp.read()  # type: ignore[union-attr]


def seal_state_pickles(
    seal: Callable[[bytes], bytes],
    unseal: Callable[[bytes], bytes],
    rejected: type[Exception],
    token_pickle: object,
) -> None:
    """Make Reflex pass every page-state pickle it writes through ``seal`` and every blob it
    reads through ``unseal`` before unpickling (``unseal`` raising ``rejected``: a fresh state),
    and use ``token_pickle`` (``dumps``/``loads``) as its token manager's ``pickle``.
    Idempotent. :class:`~referral_app.infra.framework.FrameworkChanged` if Reflex's internals
    are not as expected."""
    from reflex_base.utils.exceptions import StateSchemaMismatchError

    base_state, state_token, token_manager = _check_state_pickles(token_pickle)
    if getattr(base_state.__dict__["_serialize"], _MARK, False):
        return
    original_serialize = base_state.__dict__["_serialize"]
    original_deserialize = base_state.__dict__["_deserialize"].__func__
    token_serialize = state_token.__dict__["serialize"].__func__
    token_deserialize = state_token.__dict__["deserialize"].__func__

    def opened(data: bytes | None, fp: BinaryIO | None) -> bytes:
        try:
            return unseal(_read(data, fp))
        except rejected as error:
            # What Reflex's managers already read as "no usable state": a fresh one.
            raise StateSchemaMismatchError(str(error)) from None

    @functools.wraps(original_serialize)
    def _serialize(self):
        return seal(original_serialize(self))

    @functools.wraps(original_deserialize)
    def _deserialize(cls, data=None, fp=None):
        return original_deserialize(cls, data=opened(data, fp))

    @functools.wraps(token_serialize)
    def serialize(cls, state):
        return seal(token_serialize(cls, state))

    @functools.wraps(token_deserialize)
    def deserialize(cls, data=None, fp=None):
        return token_deserialize(cls, data=opened(data, fp))

    for function in (_serialize, _deserialize, serialize, deserialize):
        setattr(function, _MARK, True)
    base_state._deserialize = classmethod(_deserialize)
    state_token.serialize = classmethod(serialize)
    state_token.deserialize = classmethod(deserialize)
    token_manager.pickle = token_pickle
    base_state._serialize = _serialize  # last: it marks the whole install as done


# --- Before a hydrate --------------------------------------------------------------


def hydrate_event_names() -> frozenset[str]:
    """The full names of Reflex's hydrate events (``hydrate``, ``hydrate_and_load`` of ``rx.State``)."""
    import reflex as rx

    return frozenset(f"{rx.State.get_full_name()}.{name}" for name in ("hydrate", "hydrate_and_load"))


def _check_hydrate_hook(app: Any) -> None:
    import reflex as rx
    from reflex.middleware import Middleware

    preprocess = getattr(type(app), "_preprocess", None)
    expect(inspect.iscoroutinefunction(preprocess) and parameters(preprocess) == ["self", "state", "event"],
           "reflex", "App._preprocess(self, state, event), which runs app middleware before an event", _MODULE)
    expect(callable(getattr(app, "add_middleware", None)) and isinstance(getattr(app, "_middlewares", None), list),
           "reflex", "App.add_middleware / App._middlewares", _MODULE)
    expect(parameters(Middleware.preprocess) == ["self", "app", "state", "event"],
           "reflex", "Middleware.preprocess(self, app, state, event)", _MODULE)
    handlers = getattr(rx.State, "event_handlers", {})
    expect("hydrate" in handlers and "hydrate_and_load" in handlers,
           "reflex", "rx.State's hydrate and hydrate_and_load events", _MODULE)
    expect("vars" in parameters(getattr(handlers["hydrate_and_load"], "fn", None)),
           "reflex", "State.hydrate_and_load(vars=...), which carries the browser's storage values", _MODULE)


def before_hydrate(app: Any, state_cls: type, check: Callable[[Any, object], Any]) -> None:
    """Call ``check(state, payload)`` before each hydrate event of ``app`` sends a tab its whole
    state: ``state`` is the tab's ``state_cls`` instance, ``payload`` the event's payload (give
    it to :func:`hydrate_storage_value`). ``check`` may reset states and may be a coroutine
    function (it is awaited); what it returns is ignored. :class:`~referral_app.infra.framework.FrameworkChanged` (the app does not start)
    if Reflex no longer runs app middleware before its hydrate events."""
    from reflex.middleware import Middleware

    _check_hydrate_hook(app)
    names = hydrate_event_names()

    class BeforeHydrate(Middleware):
        async def preprocess(self, app, state, event) -> None:
            if event.name in names:
                outcome = check(await state.get_state(state_cls), event.payload)
                if inspect.isawaitable(outcome):
                    await outcome
            return None

    middleware = BeforeHydrate()
    app.add_middleware(middleware)
    expect(middleware in app._middlewares, "reflex", "App.add_middleware (the middleware was not kept)", _MODULE)


def client_storage_key(state_cls: type, name: str) -> str:
    """How Reflex 0.10.1 names a client-storage var (``rx.LocalStorage``) among the values a
    page sends with ``hydrate_and_load``: ``"<state full name>.<var>_rx_state_"``
    (``reflex.compiler.utils._compile_client_storage_recursive``)."""
    from reflex_base.constants.state import FIELD_MARKER

    return f"{state_cls.get_full_name()}.{name}{FIELD_MARKER}"


def hydrate_storage_value(payload: object, state_cls: type, name: str) -> str | None:
    """The value of a client-storage var in a ``hydrate_and_load`` event's payload (``{"vars":
    {key: value}}``): "" when the page sent none (so a check on it fails closed), None when the
    payload carries no storage values at all (a plain ``hydrate``)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("vars"), dict):
        return None
    value = payload["vars"].get(client_storage_key(state_cls, name), "")
    return value if isinstance(value, str) else ""


# --- A state the server lost ---------------------------------------------------------


def state_was_lost(state: Any) -> bool:
    """Whether ``state``'s tree is one Reflex made afresh, with no page route: the page's own
    state was lost while a background task had released it (see the module docstring)."""
    return not state._get_root_state().router_data
