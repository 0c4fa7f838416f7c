"""Guards of reflex_state.py (referral_app/infra/framework/): Reflex's page-state pickles
(the MAC of infra/state_mac.py), its hydrate events (the session check of state/base.py), the
names of client-storage values, and a state tree Reflex made afresh.

Each fails if Reflex changes what the module reaches into; the two security hooks must also
refuse to start the app (FrameworkChanged, naming Reflex, its version and the module).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import reflex as rx
from reflex.compiler.utils import compile_client_storage

import referral_app.referral_app  # noqa: F401  (the app installs the MAC and the hydrate check at import)
from referral_app.infra import state_mac
from referral_app.infra.cookies import BINDING_STORAGE_KEY
from referral_app.infra.framework import FrameworkChanged, reflex_state
from referral_app.infra.framework.reflex_state import client_storage_key
from referral_app.state.base import SessionState

SITE_PACKAGES = Path(rx.__file__).resolve().parent.parent


# --- Page-state pickles (infra/state_mac.py) ------------------------------------------


def test_install_is_in_place_and_idempotent():
    from reflex.istate.manager.token import StateToken
    from reflex.state import BaseState
    from reflex.utils import token_manager

    state_mac.install()
    for function in (BaseState._serialize, BaseState._deserialize.__func__, StateToken.serialize.__func__,
                     StateToken.deserialize.__func__):
        assert getattr(function, "__referral_state_mac__", False)
    assert isinstance(token_manager.pickle, state_mac._AuthenticatedPickle)
    assert BaseState._serialize.__wrapped__.__qualname__ == "BaseState._serialize"  # wrapped once


@pytest.mark.parametrize("what", ["deserialize signature", "token serialize", "token manager pickle"])
def test_install_refuses_to_start_when_reflex_changed(monkeypatch, what):
    from reflex.istate.manager.token import StateToken
    from reflex.state import BaseState
    from reflex.utils import token_manager

    if what == "deserialize signature":
        monkeypatch.setattr(BaseState, "_deserialize", classmethod(lambda cls, blob: None))
    elif what == "token serialize":
        monkeypatch.setattr(StateToken, "serialize", staticmethod(lambda state: b""))
    else:
        monkeypatch.setattr(token_manager, "pickle", object())
    with pytest.raises(RuntimeError, match="does not start"):
        state_mac.install()


def _unpickle_sites(path: Path) -> set[str]:
    """``function qualname`` of each call that unpickles (pickle/dill/cloudpickle load(s), Unpickler)."""
    sites: set[str] = set()

    def visit(node, scope):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, [*scope, child.name])
                continue
            if isinstance(child, ast.Call):
                func = child.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
                if name in ("load", "loads", "Unpickler") and owner in ("pickle", "dill", "cloudpickle", "_pickle"):
                    sites.add(".".join(scope))
                if isinstance(func, ast.Attribute) and owner == "functools" and name == "partial" and child.args:
                    target = child.args[0]
                    if isinstance(target, ast.Attribute) and getattr(target.value, "id", "") in ("pickle", "dill"):
                        sites.add(".".join(scope))
            visit(child, scope)

    visit(ast.parse(path.read_text()), [])
    return sites


def test_reflex_unpickles_only_where_state_mac_checks_first():
    """Every place Reflex unpickles: a new one (an upgrade) must be looked at and covered."""
    found = {}
    for package in ("reflex", "reflex_base"):
        for path in sorted((SITE_PACKAGES / package).rglob("*.py")):
            text = path.read_text(errors="replace")
            if "pickle" in text or "dill" in text:
                for site in _unpickle_sites(path):
                    found.setdefault(str(path.relative_to(SITE_PACKAGES)), set()).add(site)
    assert found == {
        "reflex/state.py": {"BaseState._deserialize"},  # wrapped: the MAC is checked first
        "reflex/istate/manager/token.py": {"StateToken.deserialize"},  # wrapped
        # Its module-level `pickle` is state_mac's (dumps/loads only, checked just below).
        "reflex/utils/token_manager.py": {
            "RedisTokenManager._subscribe_lost_and_found_updates",
            "RedisTokenManager._fetch_socket_record",
        },
        # Reflex's build cache (a file it writes under .web while compiling), not state.
        "reflex_base/utils/decorator.py": {"_read_cached_procedure_file"},
    }


def test_the_token_manager_uses_only_dumps_and_loads_of_pickle():
    tree = ast.parse((SITE_PACKAGES / "reflex/utils/token_manager.py").read_text())
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and getattr(node.value, "id", "") == "pickle"
    }
    assert used == {"dumps", "loads"}
    assert not hasattr(state_mac._AuthenticatedPickle(), "load")  # anything new fails, never unpickles


def test_reflex_managers_read_state_through_the_wrapped_methods():
    """StateManagerRedis calls BaseState._deserialize on the base class and treats
    StateSchemaMismatchError as "no state"; the disk manager goes through the token class."""
    redis_source = (SITE_PACKAGES / "reflex/istate/manager/redis.py").read_text()
    assert "with contextlib.suppress(StateSchemaMismatchError):" in redis_source
    assert "BaseState._deserialize(data=redis_state)" in redis_source
    disk_source = (SITE_PACKAGES / "reflex/istate/manager/disk.py").read_text()
    assert "token.deserialize(fp=file)" in disk_source and "token.serialize(substate)" in disk_source
    token_source = (SITE_PACKAGES / "reflex/istate/manager/token.py").read_text()
    assert "return BaseState._deserialize(data, fp)" in token_source and "return state._serialize()" in token_source


def test_the_refusal_names_reflex_its_version_and_the_module(monkeypatch):
    from reflex.state import BaseState

    monkeypatch.setattr(BaseState, "_deserialize", classmethod(lambda cls, blob: None))
    with pytest.raises(FrameworkChanged) as refused:
        state_mac.install()
    message = str(refused.value)
    assert message.startswith("Reflex 0.10.1 changed BaseState._deserialize(cls, data, fp);")
    assert "referral_app/infra/framework/reflex_state.py must be updated before this app may start" in message
    assert "tested for Reflex 0.10.1" in message


# --- Before a hydrate (state/base.py's session check) --------------------------------------


def _app():
    from referral_app.referral_app import app

    return app


def test_the_session_check_runs_as_app_middleware_before_every_hydrate():
    """Reflex's event processor runs the app's middleware (``App._preprocess``) before the
    handler, for hydrate events too; ours is among them. tests/state/test_stale_state.py
    shows the reset itself through Reflex's processor."""
    from reflex_base.event.processor import base_state_processor

    app = _app()
    assert any(type(m).__name__ == "BeforeHydrate" for m in app._middlewares)
    source = inspect.getsource(base_state_processor)
    assert "await self.middleware._preprocess(state, event)" in source
    assert "middleware=self" in inspect.getsource(type(app))  # the app is the processor's middleware
    assert reflex_state.hydrate_event_names() == {
        f"{rx.State.get_full_name()}.hydrate", f"{rx.State.get_full_name()}.hydrate_and_load"
    }


@pytest.mark.parametrize("what", ["preprocess", "middleware list", "hydrate event"])
def test_the_app_does_not_start_without_the_hydrate_hook(monkeypatch, what):
    from reflex.app import App

    app = _app()
    if what == "preprocess":
        monkeypatch.setattr(App, "_preprocess", lambda self, state: None)  # another signature
        expected = "Reflex 0.10.1 changed App._preprocess(self, state, event)"
    elif what == "middleware list":
        monkeypatch.setattr(app, "_middlewares", ())
        expected = "Reflex 0.10.1 changed App.add_middleware / App._middlewares"
    else:
        handlers = {k: v for k, v in rx.State.event_handlers.items() if k != "hydrate_and_load"}
        monkeypatch.setattr(rx.State, "event_handlers", handlers)
        expected = "Reflex 0.10.1 changed rx.State's hydrate and hydrate_and_load events"
    before = list(app._middlewares)
    with pytest.raises(FrameworkChanged) as refused:
        reflex_state.before_hydrate(app, SessionState, lambda state, payload: None)
    assert str(refused.value).startswith(expected)
    assert "reflex_state.py must be updated before this app may start" in str(refused.value)
    assert list(app._middlewares) == before  # nothing half-installed


# --- Client-storage names (the session binding in the hydrate payload) ---------------------


def test_the_binding_is_a_local_storage_var_under_the_key_the_app_reads():
    local = compile_client_storage(rx.State)["local_storage"]
    key = client_storage_key(SessionState, "session_binding")
    assert key in local, sorted(local)
    assert local[key]["name"] == BINDING_STORAGE_KEY


def test_hydrate_and_load_takes_the_browsers_storage_values_as_vars():
    assert "vars" in inspect.signature(rx.State.hydrate_and_load.fn).parameters


# --- A state Reflex made afresh -----------------------------------------------------------


def test_a_routeless_tree_is_a_lost_state_and_reflex_still_rehydrates_one():
    """``state_was_lost`` reads the root state's ``router_data``; Reflex rehydrates a routeless
    tree before a page event (tests/faults/test_redis_restart.py shows it end to end)."""
    from reflex_base.event.processor import base_state_processor

    state = SessionState(_reflex_internal_init=True)
    assert reflex_state.state_was_lost(state)
    state._get_root_state().router_data = {"pathname": "/profile"}
    assert not reflex_state.state_was_lost(state)
    source = inspect.getsource(base_state_processor)
    assert "not previous_router_data and event.name not in _hydrate_event_names()" in source
    assert "await self._rehydrate(root_state)" in source
