"""sqladmin's internals that the staff admin relies on (sqladmin 0.32.0).

Two reaches, for ``admin/setup.py`` and ``admin/views.py``:

* :class:`PostOnlyAdmin` (a security control): sqladmin answers ``@action`` routes and
  logout on GET, which a link or a redirect from any site can trigger with the staff's
  cookie. It registers each action in ``Admin._handle_action_decorated_func(func, view,
  view_instance)`` as a Starlette ``Route`` named ``action-<identity>-<slug>`` (the slug in
  the ``_slug`` attribute ``@action`` sets, beside ``_action``), and logout as ``logout``;
  this class makes each of them answer POST only (``admin/auth.py``'s guard then wants the
  CSRF token). Fails closed: at import when the hook or ``@action``'s marks changed, and
  when a view is added, each of its actions must have a POST-only route (else
  :class:`FrameworkChanged`, the app does not start).
* :class:`GuardedModelView`: sqladmin builds every by-id query (details, edit, delete, the
  file routes) in ``ModelView._stmt_by_identifier(identifier)``, and keeps the searchable
  columns' names in ``ModelView._search_fields``; a subclass gets a public hook for each,
  ``check_identifier(identifier)`` and :meth:`GuardedModelView.searchable_columns`. The
  details page asks ``ModelView.get_detail_value(obj, prop, request)`` (undocumented, awaited
  by its template) for each cell; a subclass whose cell needs a read (a service call, which
  the documented formatters, plain functions, cannot await) defines
  :meth:`GuardedModelView.detail_cell`.

Guard tests: ``tests/framework/test_sqladmin.py``.
"""

from __future__ import annotations

import inspect
from typing import Any

from sqladmin import Admin, ModelView, action
from sqlalchemy import Select
from starlette.routing import Route

from referral_app.infra.framework import FrameworkChanged, expect, parameters

_MODULE = "sqladmin"


def _check_action_hook() -> None:
    hook = getattr(Admin, "_handle_action_decorated_func", None)
    expect(parameters(hook) == ["self", "func", "view", "view_instance"],
           "sqladmin", "Admin._handle_action_decorated_func(self, func, view, view_instance)", _MODULE)

    @action(name="probe")
    def probe() -> None:  # what @action leaves on a function
        pass

    expect(getattr(probe, "_action", False) is True and getattr(probe, "_slug", None) == "probe",
           "sqladmin", "the _action and _slug attributes @action sets", _MODULE)
    expect(parameters(getattr(ModelView, "_stmt_by_identifier", None)) == ["self", "identifier"],
           "sqladmin", "ModelView._stmt_by_identifier(self, identifier)", _MODULE)
    expect(parameters(getattr(ModelView, "get_detail_value", None)) == ["self", "obj", "prop", "request"],
           "sqladmin", "ModelView.get_detail_value(self, obj, prop, request)", _MODULE)


_check_action_hook()  # at import: the app does not start on a sqladmin that no longer fits


def _route(admin: Admin, name: str) -> Route:
    routes = [r for r in admin.admin.router.routes if isinstance(r, Route) and r.name == name]
    if len(routes) != 1:
        raise FrameworkChanged("sqladmin", f"its route {name!r} (found {len(routes)})", _MODULE)
    return routes[0]


def _post_only(admin: Admin, name: str) -> None:
    _route(admin, name).methods = {"POST"}


def _actions(view_instance: Any) -> list[str]:
    """The slugs of ``view_instance``'s ``@action`` methods."""
    return [getattr(func, "_slug") for _, func in inspect.getmembers(view_instance, inspect.ismethod)
            if hasattr(func, "_action")]


class PostOnlyAdmin(Admin):
    """sqladmin's ``Admin`` whose logout and ``@action`` routes answer POST only (see the
    module docstring); otherwise sqladmin's, with the same arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _post_only(self, "logout")

    def _handle_action_decorated_func(self, func, view, view_instance) -> None:
        super()._handle_action_decorated_func(func, view, view_instance)
        if hasattr(func, "_action"):
            _post_only(self, f"action-{view_instance.identity}-{func._slug}")

    def add_view(self, view: Any) -> None:
        """sqladmin's ``add_view``, then a check that each action of the view answers POST only."""
        super().add_view(view)
        for view_instance in self._views:
            for slug in _actions(view_instance):
                route = _route(self, f"action-{view_instance.identity}-{slug}")
                expect(route.methods == {"POST"}, "sqladmin",
                       f"how actions are registered (action {slug!r} still answers {sorted(route.methods or ())})",
                       _MODULE)


class GuardedModelView(ModelView):
    """A ``ModelView`` with public hooks for three of sqladmin's undocumented members: a
    subclass defines ``check_identifier(identifier)`` (raise ``HTTPException`` to refuse),
    which runs before every by-id query, reads :meth:`searchable_columns`, and may define
    :meth:`detail_cell`."""

    def check_identifier(self, identifier: str) -> None:
        """Refuse ``identifier`` (raise an ``HTTPException``) before any query is built with it."""
        raise NotImplementedError(f"{type(self).__name__} must define check_identifier")

    def _stmt_by_identifier(self, identifier: str) -> Select:
        self.check_identifier(identifier)
        return super()._stmt_by_identifier(identifier)

    async def detail_cell(self, obj: Any, prop: str) -> Any:
        """The details page's shown value of ``prop`` of ``obj`` when it must be read
        asynchronously (a service call); None: sqladmin's own (its formatters)."""
        return None

    async def get_detail_value(self, obj: Any, prop: str, request: Any = None) -> tuple[Any, Any]:
        cell = await self.detail_cell(obj, prop)
        if cell is not None:
            return getattr(obj, prop, None), cell
        return await super().get_detail_value(obj, prop, request)

    def searchable_columns(self) -> list[Any]:
        """The model's attributes for ``column_searchable_list``, in its order."""
        return [getattr(self.model, name) for name in self._search_fields]
