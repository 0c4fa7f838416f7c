"""Every reach into the internals of Reflex, Granian, python-engineio/python-socketio and
sqladmin: the one package for them.

A reach is a patch of a framework, a wrapped or replaced method, a private attribute or a
non-public module, or reliance on behaviour the framework does not document. Public,
documented API (``rx.App(...)``, ``rx.plugins.Plugin``, ``rx.State`` and its vars,
``sqladmin.ModelView`` subclassing with ``@action``/``@expose``/``search_query``, starlette
types, Granian's ``Server`` arguments) is no reach and stays where it is used. The feature
modules keep their logic (the MAC, the origin policy, the session check, the log limits) and
call one small named function here, which does the hooking.

Each module checks, where it hooks in, that the hook point is there with the expected shape.
"Fails closed" below means: at start (import of ``referral_app/referral_app.py``) the app
refuses to run, with a :class:`FrameworkChanged` that names the package, the version installed,
what changed, the module to update and the version it was tested with (:data:`TESTED_VERSIONS`,
pinned in ``requirements.txt``). Upgrading a framework: run ``tests/framework/`` first; each
guard test below is in ``tests/framework/test_<module>.py``.

The reaches (module: function, for whom; why; guard test; failure):

1. ``reflex_state.seal_state_pickles``, for ``infra/state_mac.py``. Reflex unpickles page state
   read back from Redis or disk (``BaseState._serialize``/``_deserialize``,
   ``StateToken.serialize``/``deserialize``, the token manager's ``pickle``); the MAC is
   checked before a byte is unpickled. Guards: ``test_install_is_in_place_and_idempotent``,
   ``test_install_refuses_to_start_when_reflex_changed``,
   ``test_reflex_unpickles_only_where_state_mac_checks_first`` (every unpickling site in
   Reflex). SECURITY; fails closed.
2. ``reflex_state.before_hydrate``, for ``state/base.py``. The stale-state reset: before a
   hydrate sends a tab its whole state, ``check_session_on_hydrate`` re-checks the session (a
   Reflex app middleware, run by ``App._preprocess``). Guards:
   ``test_the_session_check_runs_as_app_middleware_before_every_hydrate``,
   ``test_the_app_does_not_start_without_the_hydrate_hook``. SECURITY; fails closed.
3. ``reflex_state.client_storage_key``, for ``state/base.py``. How Reflex names the session
   binding (``rx.LocalStorage``) in the ``hydrate_and_load`` payload. Guard:
   ``test_the_binding_is_a_local_storage_var_under_the_key_the_app_reads``. A change reads as
   no binding: nobody is signed in (closed, though not at start).
4. ``reflex_state.state_was_lost``, for ``state/base.py`` and ``state/profile.py``. A background
   task sees the tree Reflex made afresh after Redis lost the page's (the root's empty
   ``router_data``) and asks the page to come back, which Reflex rehydrates. Guard:
   ``test_a_routeless_tree_is_a_lost_state_and_reflex_still_rehydrates_one`` (end to end:
   ``tests/faults/test_redis_restart.py``).
5. ``reflex_socket.guard_socket_origins``, for ``infra/origins.py``. The websocket's origin
   check: python-engineio's ``cors_allowed_origins`` on ``app.sio.eio`` gets the app's policy
   (Reflex passes a fixed list). Guards: ``test_the_apps_socket_server_uses_the_policy``,
   ``test_engineio_checks_the_origin_of_every_handshake_with_the_callable``,
   ``test_the_app_module_refuses_to_import_without_the_origin_hook``. SECURITY; fails closed
   (at start a probe from a foreign origin must be refused).
6. ``reflex_socket.on_socket_closed``, for ``infra/live.py``. Reflex has no "tab gone" hook:
   ``EventNamespace.on_disconnect`` is wrapped so a closed page's live updates end at once.
   Guard: ``test_a_closing_socket_ends_its_pages_subscriptions_and_reflex_still_cleans_up``.
   Refuses to start without it.
7. ``reflex_socket.refuse_unknown_events``. ``EventNamespace.on_event`` and Reflex's handler
   registry: an unknown event costs one short log line, not 9 kB. Guard:
   ``test_an_unknown_event_is_refused_in_one_short_line_before_reflex_queues_it``. Refuses to
   start without it.
8. ``reflex_socket.lift_process_wide_client_error_limit``, for ``infra/logs.py``.
   ``EventNamespace._MAX_CLIENT_ERRORS_PER_WINDOW`` let one client's tabs silence everybody's
   error reports; the per-client limit applies instead. Guard:
   ``test_reflex_leaves_client_error_reports_to_the_per_client_limit``. Refuses to start
   without it.
9. ``reflex_logging.event_request_id`` / ``event_client_ip``, for ``infra/logs.py``. Reflex's
   ``EventContext`` (a non-public module): a page event's request id and client, for the log
   lines and their per-client limit. Guard:
   ``test_a_page_events_request_id_and_client_come_from_reflexs_event_context``. Without it
   the records carry the websocket's own request id and client.
10. ``reflex_logging.start_worker_tasks_in``, for ``infra/logs.py``. ``ensure_task`` wrapped in
    two Reflex modules: worker-wide tasks log as the server, not as the client whose event
    started them. Guard: ``test_reflex_starts_its_worker_tasks_through_the_detaching_wrapper``.
    Refuses to start without it.
11. ``reflex_frontend.same_origin_state_js``, for ``infra/frontend.py``. Reflex's
    ``getBackendURL`` rewritten so one build serves any origin. Guards:
    ``test_patched_frontend_talks_to_the_pages_own_origin`` (in Node.js),
    ``test_patch_is_idempotent_and_refuses_an_unknown_state_js``. The build stops if Reflex
    changed it.
12. ``reflex_frontend.static_dir`` / ``start_prod_server``, for ``infra/static_pages.py`` and
    ``infra/frontend.py``. Where Reflex puts the compiled pages, and what ``reflex run --env
    prod`` does to serve them. Guard:
    ``test_reflex_still_serves_a_prebuilt_frontend_the_way_start_prod_server_expects``.
13. ``granian.default_server_arguments``, for ``infra/server.py``. ``granian.server.Server``
    replaced by a subclass: Reflex starts Granian without our HTTP/1-only mode, header timeout
    and worker respawn. Guards: ``test_granian_gets_the_header_timeout``,
    ``test_granian_speaks_http1_only_and_replaces_dead_workers``,
    ``test_reflex_still_starts_granian_through_granian_server``.
14. ``granian.proxy_headers_resolver``, for ``infra/client_ip.py``. Granian's
    ``X-Forwarded-For`` rule, used on a scope alone. Guard:
    ``test_granians_proxy_rule_takes_the_rightmost_untrusted_hop_of_every_line``.
15. ``sqladmin.PostOnlyAdmin``, for ``admin/setup.py``. Actions and logout answer POST only
    (sqladmin runs them on GET): ``Admin._handle_action_decorated_func`` and the routes it
    names. Guards: ``test_every_action_and_logout_answer_post_only``,
    ``test_the_app_does_not_start_when_actions_would_answer_get``. SECURITY; fails closed
    (each action of each view must answer POST only when the view is added).
16. ``sqladmin.GuardedModelView``, for ``admin/views.py``. ``ModelView._stmt_by_identifier``
    (every by-id query: an id that is not an id is a 404), ``_search_fields`` (the literal
    search) and ``get_detail_value`` (a details cell read by a service: a webhook's attempts).
    Guards: ``test_sqladmin_builds_every_by_id_query_and_search_where_the_views_hook_in``,
    ``test_the_details_page_asks_the_view_for_each_cell``. The first and the last refuse to
    start when their signature changed.

(The issue counted fourteen reaches in twelve modules; this list counts some finer.) Not
reaches, left where they are: ``reflex.app.default_backend_exception_handler`` (the documented
default of ``rx.App(backend_exception_handler=...)``, in ``state/base.py``); the handlers that
``infra/logs.py`` takes off the ``reflex``, ``engineio.server`` and ``socketio.server`` loggers
(plain ``logging`` configuration by logger name); ``sqladmin.helpers`` (``admin/views.py``).
"""

from __future__ import annotations

from importlib import metadata

# The versions every reach below was written against and its guard test last passed on
# (requirements.txt pins them; an upgrade runs tests/framework/ first).
TESTED_VERSIONS = {
    "reflex": "0.10.1",
    "granian": "2.8.9",
    "python-engineio": "4.15.1",
    "python-socketio": "5.18.1",
    "sqladmin": "0.32.0",
}
_DISPLAY_NAMES = {"reflex": "Reflex", "granian": "Granian", "sqladmin": "sqladmin"}


def installed_version(package: str) -> str:
    """The installed version of the distribution ``package`` ("not installed" if none)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


class FrameworkChanged(RuntimeError):
    """A hook point of ``package`` that a module of this package relies on is missing or has
    another shape (an upgrade). Raised at start (import of the app module), so the app does
    not run without the control the hook carries.

    ``str()`` names the package, the version installed, what changed, the module to update
    and the version it was tested with.
    """

    def __init__(self, package: str, what: str, module: str) -> None:
        self.package, self.what, self.module = package, what, module
        name = _DISPLAY_NAMES.get(package, package)
        super().__init__(
            f"{name} {installed_version(package)} changed {what}; "
            f"referral_app/infra/framework/{module}.py must be updated before this app may start "
            f"(written and tested for {name} {TESTED_VERSIONS.get(package, '?')}), so it does not start"
        )


def expect(ok: object, package: str, what: str, module: str) -> None:
    """Raise :class:`FrameworkChanged` (``package``, ``what``, ``module``) unless ``ok`` is true."""
    if not ok:
        raise FrameworkChanged(package, what, module)


def parameters(function: object) -> list[str]:
    """The parameter names of ``function`` ([] when it has no signature)."""
    import inspect

    try:
        return list(inspect.signature(function).parameters)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return []
