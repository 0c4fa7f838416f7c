"""Guards of sqladmin.py (referral_app/infra/framework/): POST-only admin actions and logout (a
security control: the app refuses to start without it), and the two private ModelView members
the admin's views hook into (the by-id query, the searchable columns).

Each fails if sqladmin changes what the module reaches into. The admin's behaviour (a GET never
runs an action, ids that are not ids are a 4xx, searches match literally) is shown in
tests/admin/.
"""

from __future__ import annotations

import inspect

import pytest
from fastapi import FastAPI
from sqladmin import Admin, ModelView
from starlette.routing import Route

from referral_app.admin.auth import StaffAuth
from referral_app.admin.setup import StaffAdmin
from referral_app.admin.views import VIEWS, ReadOnlyView
from referral_app.infra.db import engine
from referral_app.infra.framework import FrameworkChanged
from referral_app.infra.framework import sqladmin as hooks


def _mounted(admin_class=StaffAdmin) -> Admin:
    admin = admin_class(FastAPI(), engine, base_url="/admin", authentication_backend=StaffAuth())
    for view in VIEWS:
        admin.add_view(view)
    return admin


def _routes(admin: Admin) -> dict[str, set[str]]:
    return {r.name: set(r.methods or ()) for r in admin.admin.router.routes if isinstance(r, Route)}


def test_every_action_and_logout_answer_post_only():
    routes = _routes(_mounted())
    actions = {name for name in routes if name.startswith("action-")}
    assert actions, "the admin has actions (deactivate, revoke, ...)"
    for name in [*actions, "logout"]:
        assert routes[name] == {"POST"}, name


def test_sqladmin_still_registers_actions_through_the_hook():
    """sqladmin adds an action's route (on GET) in ``_handle_action_decorated_func``, named
    ``action-<identity>-<slug>``, from the marks ``@action`` sets; logout is a GET route."""
    source = inspect.getsource(Admin._handle_action_decorated_func)
    assert 'name=f"action-{view_instance.identity}-{getattr(func, \'_slug\')}"' in source
    assert "self._handle_action_decorated_func" in inspect.getsource(Admin.add_model_view)
    stock = _routes(_mounted(Admin))
    assert stock["logout"] == {"GET", "HEAD"}  # what PostOnlyAdmin changes


def test_the_app_does_not_start_when_actions_would_answer_get(monkeypatch):
    """An upgrade that registers actions another way (here: our override never called) leaves
    an action on GET: adding the view refuses, naming sqladmin and the module."""
    monkeypatch.setattr(hooks.PostOnlyAdmin, "_handle_action_decorated_func", Admin._handle_action_decorated_func)
    with pytest.raises(FrameworkChanged) as refused:
        _mounted()
    message = str(refused.value)
    assert message.startswith("sqladmin 0.32.0 changed how actions are registered (action ")
    assert "referral_app/infra/framework/sqladmin.py must be updated before this app may start" in message
    assert "tested for sqladmin 0.32.0" in message


def test_the_app_does_not_start_without_the_logout_route(monkeypatch):
    original = Admin.__init__

    def without_logout(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.admin.router.routes[:] = [r for r in self.admin.router.routes if getattr(r, "name", "") != "logout"]

    monkeypatch.setattr(Admin, "__init__", without_logout)
    with pytest.raises(FrameworkChanged, match="sqladmin 0.32.0 changed its route 'logout'"):
        StaffAdmin(FastAPI(), engine, base_url="/admin", authentication_backend=StaffAuth())


@pytest.mark.parametrize("what", ["hook signature", "action marks", "by-id query", "detail value"])
def test_the_app_does_not_start_on_a_sqladmin_without_the_hooks(monkeypatch, what):
    if what == "hook signature":
        monkeypatch.setattr(Admin, "_handle_action_decorated_func", lambda self, func: None)
        expected = "sqladmin 0.32.0 changed Admin._handle_action_decorated_func(self, func, view, view_instance)"
    elif what == "action marks":
        monkeypatch.setattr(hooks, "action", lambda **kwargs: (lambda func: func))
        expected = "sqladmin 0.32.0 changed the _action and _slug attributes @action sets"
    elif what == "by-id query":
        monkeypatch.delattr(ModelView, "_stmt_by_identifier")
        expected = "sqladmin 0.32.0 changed ModelView._stmt_by_identifier(self, identifier)"
    else:
        monkeypatch.setattr(ModelView, "get_detail_value", lambda self, obj, prop: None)
        expected = "sqladmin 0.32.0 changed ModelView.get_detail_value(self, obj, prop, request)"
    with pytest.raises(FrameworkChanged) as refused:
        hooks._check_action_hook()
    assert str(refused.value).startswith(expected)


def test_sqladmin_builds_every_by_id_query_and_search_where_the_views_hook_in():
    """Details, edit, delete and the file routes go through ``_stmt_by_identifier``; the
    search box's columns are ``_search_fields`` (names, from ``column_searchable_list``)."""
    from sqladmin import _queries, models

    assert "_stmt_by_identifier(" in inspect.getsource(_queries)
    source = inspect.getsource(models.ModelView)
    for caller in ("get_object_for_details", "get_object_for_edit", "delete_model"):
        assert caller in source
    assert "self._search_fields = [" in source
    view = next(view for view in VIEWS if view.column_searchable_list)
    instance = view()
    assert isinstance(instance, ReadOnlyView)
    assert instance.searchable_columns() == [getattr(view.model, name) for name in instance._search_fields]
    assert len(instance.searchable_columns()) == len(view.column_searchable_list)


def test_the_details_page_asks_the_view_for_each_cell():
    """sqladmin's details template takes every cell from ``get_detail_value``, where
    ``GuardedModelView.detail_cell`` hooks in (the webhook page's attempts)."""
    from pathlib import Path

    import sqladmin

    template = (Path(sqladmin.__file__).parent / "templates" / "sqladmin" / "details.html").read_text()
    assert "model_view.get_detail_value(model, name, request)" in template
    [webhooks_view] = [view for view in VIEWS if view.identity == "webhook-event"]
    assert webhooks_view.detail_cell is not hooks.GuardedModelView.detail_cell
