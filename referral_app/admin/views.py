"""The admin's table views. Staff may only do what cannot break a rule: revoke a session,
deactivate or reactivate a user, resend a webhook event; each such action is kept in the
audit log (:meth:`ReadOnlyView.staff_action`). Nothing is created, edited or deleted here.
Users and referrals can be exported as CSV (streamed); each export is in the audit log too
(who, which export, how many rows, when, from which address), written before the first row.

Every view derives from :class:`ReadOnlyView`, which gives it, besides read-only defaults:

* record ids checked before any query: a URL whose id is not one of the table's ids
  (``/admin/user/details/abc``, ``.../99999999999``) is a 404, never a 500;
* literal search: ``search_query`` drops a term with NUL (nothing stored holds one) and
  hands the rest to :meth:`ReadOnlyView.literal_search`, which a view overrides; match with
  :func:`contains_literally`, which escapes ``%``, ``_`` and the escape character, so a
  search for ``_`` finds an underscore, on SQLite and PostgreSQL alike.

Actions (``@action``) change things, so they answer only POST with the CSRF token
(``admin/auth.py``); ``current_staff(request)`` says who runs them.

Our actions, exports and the attempts on a webhook's page call services
(``services/staff.py``); nothing here opens a database session. The list and details pages
are sqladmin's own reading, through the session maker it was given, in a worker thread
(``ModelView._run_query``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import json
from collections.abc import Awaitable, Callable

from markupsafe import Markup, escape
from sqladmin import action, expose
from sqlalchemy import BigInteger, Integer, Select, SmallInteger, false, func, or_, select
from sqlalchemy.orm import aliased
from sqladmin.helpers import get_primary_keys, object_identifier_values
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from referral_app.admin.actor import staff_actor
from referral_app.admin.csv_export import csv_response
from referral_app.domain import audit, insights, webhooks
from referral_app.domain.audit import StaffActor
from referral_app.domain.webhooks import Attempt
from referral_app.infra.framework.sqladmin import GuardedModelView
from referral_app.models import AuthSession, ConfirmationCode, StaffAccount, StaffAction, User, WebhookEvent
from referral_app.services import staff
from referral_app.services import webhooks as webhook_service


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


class PredicateFilter:
    """A yes/no filter on any SQL condition (sqladmin's filter protocol)."""

    has_operator = False
    template = "sqladmin/filters/lookup_filter.html"

    def __init__(self, title: str, parameter_name: str, condition) -> None:
        self.title, self.parameter_name, self.condition = title, parameter_name, condition

    async def lookups(self, request: Request, model: Any, run_query) -> list[tuple[str, str]]:
        return [("all", "All"), ("yes", "Yes"), ("no", "No")]

    async def get_filtered_query(self, query: Select, value: Any, model: Any) -> Select:
        if value == "yes":
            return query.where(self.condition)
        if value == "no":
            return query.where(~self.condition)
        return query


# The id columns' ranges (PostgreSQL's; SQLite's integers are wider): a number outside
# them is no record's id, and the database would refuse it with an error.
_INTEGER_RANGES = {SmallInteger: 2**15 - 1, BigInteger: 2**63 - 1, Integer: 2**31 - 1}


def _check_identifier(model: Any, identifier: str) -> None:
    """404 unless ``identifier`` could be a primary key of ``model``: an integer id written as
    the admin writes it (``7``; not ``+7``, ``07``, `` 7`` or ``٧``), within its column's range."""
    try:
        values = object_identifier_values(identifier, model)
    except (ValueError, TypeError, OverflowError):
        raise HTTPException(status_code=404) from None
    for column, value in zip(get_primary_keys(model), values):
        if isinstance(value, str) and "\x00" in value:
            raise HTTPException(status_code=404)
        for kind, limit in _INTEGER_RANGES.items():
            if isinstance(column.type, kind):
                if not isinstance(value, int) or not 1 <= value <= limit or str(value) != identifier:
                    raise HTTPException(status_code=404)
                break


def contains_literally(column, term: str):
    """``column`` contains ``term`` as typed: ``%``, ``_`` and the escape character match themselves."""
    return column.contains(term, autoescape=True)


def _ids(request: Request) -> list[int]:
    """The ids of ``?pks=1,2``; anything that is not an id is skipped."""
    ids = []
    for pk in request.query_params.get("pks", "").split(","):
        if pk.isascii() and pk.isdigit() and 1 <= int(pk) <= _INTEGER_RANGES[Integer]:
            ids.append(int(pk))
    return ids


LABELS = {
    "id": "ID", "phone_number": "Phone", "invite_code": "Invite code", "invited_by": "Invited by",
    "invited_count": "Referrals", "is_active": "Active", "created_at": "Created", "activated_at": "Code entered",
    "expires_at": "Expires", "attempts": "Wrong attempts", "revoked_at": "Revoked", "user": "User",
    "username": "Username", "last_login_at": "Last login", "user_id": "user's phone",
}


class ReadOnlyView(GuardedModelView):
    list_template = "list.html"  # sqladmin's, with the filters under the table on a phone
    column_labels = LABELS
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    can_export = False
    page_size = 25
    page_size_options = [25, 50, 100]

    def back(self, request: Request) -> RedirectResponse:
        return RedirectResponse(request.url_for("admin:list", identity=self.identity), status_code=303)

    async def staff_action(
        self, request: Request, service: Callable[[int, StaffActor], Awaitable[object]]
    ) -> RedirectResponse:
        """Run a staff action on each selected record (``?pks=``), one after the other.

        ``service(pk, actor)`` is a service (``services/staff.py``) that writes the audit log
        entry in the action's own transaction; the actor is the signed-in staff account (403
        if none). (The request got here as a POST with the session's CSRF token: ``admin/auth.py``.)
        """
        actor = staff_actor(request)
        for pk in _ids(request):
            await service(pk, actor)
        return self.back(request)

    def check_identifier(self, identifier: str) -> None:
        """Before every by-id query (details, edit, delete, file routes): 404 unless it could be an id."""
        _check_identifier(self.model, identifier)

    def search_query(self, stmt: Select, term: str) -> Select:
        """The search box's hook in sqladmin: override :meth:`literal_search` instead."""
        if "\x00" in term:  # nothing stored contains NUL, and PostgreSQL refuses it in a query
            return stmt.where(false())
        return self.literal_search(stmt, term.strip())

    def literal_search(self, stmt: Select, term: str) -> Select:
        """Rows where a searchable column contains ``term`` (case-insensitive, literally)."""
        columns = self.searchable_columns()
        return stmt.where(or_(false(), *(column.icontains(term, autoescape=True) for column in columns)))


class UserAdmin(ReadOnlyView, model=User):
    name, name_plural, icon = "User", "Users", "fa-solid fa-user"
    column_list = [
        User.id, User.phone_number, User.invite_code, User.invited_by, User.invited_count,
        User.is_active, User.created_at,
    ]
    column_details_list = [
        User.id, User.phone_number, User.invite_code, User.invited_by, User.activated_at,
        User.invited_count, User.is_active, User.created_at,
    ]
    column_searchable_list = [User.phone_number, User.invite_code]
    column_sortable_list = [User.id, User.phone_number, User.invited_count, User.created_at]
    column_default_sort = (User.id, True)
    column_filters = [
        PredicateFilter("Has activated a code", "activated", User.invited_by_id.is_not(None)),
        PredicateFilter("Has referrals", "has_referrals", User.invited_count > 0),
        PredicateFilter("Active", "active", User.is_active),
    ]
    column_formatters = {User.created_at: lambda m, a: when(m.created_at)}
    column_formatters_detail = {
        User.created_at: lambda m, a: when(m.created_at),
        User.activated_at: lambda m, a: when(m.activated_at),
        User.invited_count: lambda m, a: Markup(
            f'{m.invited_count} — <a href="../../referral/list?{escape(urlencode({"search": m.invite_code}))}">'
            "show the referrals</a>"
        ),
    }

    def literal_search(self, stmt: Select, term: str) -> Select:
        return stmt.where(or_(contains_literally(User.phone_number, term), User.invite_code == term.upper()))

    @expose("/export.csv", methods=["GET"])
    async def export_csv(self, request: Request):
        """Every user as CSV, streamed; the audit log records it first."""
        chunks = await staff.export_users(staff_actor(request))
        return csv_response("users", insights.USER_COLUMNS, chunks)

    @action(name="deactivate", label="Deactivate", confirmation_message="Deactivate? They can no longer sign in.")
    async def deactivate(self, request: Request) -> RedirectResponse:
        return await self.staff_action(request, staff.deactivate_user)

    @action(name="activate", label="Reactivate", confirmation_message="Let them sign in again?")
    async def reactivate(self, request: Request) -> RedirectResponse:
        return await self.staff_action(request, staff.reactivate_user)


Inviter = aliased(User)


class ReferralAdmin(ReadOnlyView, model=User):
    """Who invited whom: users who entered a code, with the code's owner."""

    name, name_plural, icon = "Referral", "Referrals", "fa-solid fa-share-nodes"
    column_list = [User.invited_by, User.phone_number, User.activated_at]
    column_details_list = [User.invited_by, User.phone_number, User.invite_code, User.activated_at]
    column_labels = {**LABELS, "invited_by": "Inviter", "phone_number": "Invited user", "activated_at": "When"}
    column_searchable_list = [User.phone_number]
    column_sortable_list = [User.activated_at]
    column_default_sort = (User.activated_at, True)
    column_formatters = {User.activated_at: lambda m, a: when(m.activated_at)}
    column_formatters_detail = column_formatters

    def list_query(self, request: Request) -> Select:
        return select(User).where(User.invited_by_id.is_not(None))

    def count_query(self, request: Request) -> Select:
        return select(func.count(User.id)).where(User.invited_by_id.is_not(None))

    @expose("/export.csv", methods=["GET"])
    async def export_csv(self, request: Request):
        """Every activation (who entered whose code, when) as CSV, streamed; the audit log records it first."""
        chunks = await staff.export_referrals(staff_actor(request))
        return csv_response("referrals", insights.REFERRAL_COLUMNS, chunks)

    def literal_search(self, stmt: Select, term: str) -> Select:
        """By the inviter's invite code or phone, or the invited user's phone."""
        inviter_ids = select(Inviter.id).where(
            or_(Inviter.invite_code == term.upper(), contains_literally(Inviter.phone_number, term))
        )
        return stmt.where(or_(User.invited_by_id.in_(inviter_ids), contains_literally(User.phone_number, term)))


class ConfirmationCodeAdmin(ReadOnlyView, model=ConfirmationCode):
    name, name_plural, icon = "Confirmation code", "Confirmation codes", "fa-solid fa-key"
    column_list = [
        ConfirmationCode.id, ConfirmationCode.phone_number, ConfirmationCode.created_at,
        ConfirmationCode.expires_at, ConfirmationCode.attempts,
    ]
    column_details_list = column_list
    column_searchable_list = [ConfirmationCode.phone_number]
    column_sortable_list = [ConfirmationCode.created_at, ConfirmationCode.expires_at]
    column_default_sort = (ConfirmationCode.created_at, True)
    column_formatters = {
        ConfirmationCode.created_at: lambda m, a: when(m.created_at),
        ConfirmationCode.expires_at: lambda m, a: when(m.expires_at),
    }
    column_formatters_detail = column_formatters


class SessionAdmin(ReadOnlyView, model=AuthSession):
    name, name_plural, icon = "Session", "Sessions", "fa-solid fa-id-card"
    column_list = [
        AuthSession.id, AuthSession.user, AuthSession.created_at, AuthSession.expires_at, AuthSession.revoked_at,
    ]
    column_details_list = column_list
    column_searchable_list = [AuthSession.user_id]
    column_sortable_list = [AuthSession.id, AuthSession.created_at, AuthSession.expires_at]
    column_default_sort = (AuthSession.id, True)
    column_formatters = {
        AuthSession.created_at: lambda m, a: when(m.created_at),
        AuthSession.expires_at: lambda m, a: when(m.expires_at),
        AuthSession.revoked_at: lambda m, a: when(m.revoked_at),
    }
    column_formatters_detail = column_formatters

    def literal_search(self, stmt: Select, term: str) -> Select:
        """By the user's phone number."""
        user_ids = select(User.id).where(contains_literally(User.phone_number, term))
        return stmt.where(AuthSession.user_id.in_(user_ids))

    @action(name="revoke", label="Revoke", confirmation_message="Revoke? The user is signed out at once.")
    async def revoke(self, request: Request) -> RedirectResponse:
        return await self.staff_action(request, staff.revoke_session)


class StaffAccountAdmin(ReadOnlyView, model=StaffAccount):
    name, name_plural, icon = "Staff account", "Staff accounts", "fa-solid fa-user-shield"
    column_list = [
        StaffAccount.id, StaffAccount.username, StaffAccount.is_active, StaffAccount.created_at,
        StaffAccount.last_login_at,
    ]
    column_details_list = column_list
    column_formatters = {
        StaffAccount.created_at: lambda m, a: when(m.created_at),
        StaffAccount.last_login_at: lambda m, a: when(m.last_login_at),
    }
    column_formatters_detail = column_formatters


def _attempts_table(rows: list[Attempt]) -> Markup:
    """An event's delivery attempts (``services.staff.webhook_attempts``) as a table."""
    if not rows:
        return Markup("none yet")
    cells = "".join(
        f"<tr><td>{row.attempt}</td><td>{escape(when(row.attempted_at))}</td><td>{row.status_code or '—'}</td>"
        f"<td>{row.duration_ms} ms</td><td>{escape(row.error or '')}</td></tr>"
        for row in rows
    )
    head = "<tr><th>#</th><th>When</th><th>HTTP status</th><th>Duration</th><th>Error</th></tr>"
    return Markup(f'<table class="table table-sm" id="attempts"><thead>{head}</thead><tbody>{cells}</tbody></table>')


class WebhookEventAdmin(ReadOnlyView, model=WebhookEvent):
    """The webhook outbox: every event with its delivery status; "Resend" sends one again."""

    name, name_plural, icon = "Webhook delivery", "Webhook deliveries", "fa-solid fa-paper-plane"
    column_list = [
        WebhookEvent.id, WebhookEvent.event_type, WebhookEvent.user_id, WebhookEvent.status,
        WebhookEvent.attempts, WebhookEvent.last_error, WebhookEvent.next_attempt_at, WebhookEvent.created_at,
    ]
    column_details_list = [
        WebhookEvent.id, WebhookEvent.event_id, WebhookEvent.event_type, WebhookEvent.user_id,
        WebhookEvent.inviter_id, WebhookEvent.status, WebhookEvent.attempts, WebhookEvent.last_status_code,
        WebhookEvent.last_error, WebhookEvent.created_at, WebhookEvent.next_attempt_at, WebhookEvent.retry_until,
        WebhookEvent.delivered_at, WebhookEvent.payload,
    ]
    column_labels = {
        **LABELS, "event_type": "Event", "event_id": "Webhook id", "user_id": "User ID", "inviter_id": "Inviter ID",
        "status": "Status", "attempts": "Attempts", "last_error": "Last error", "last_status_code": "Last HTTP status",
        "next_attempt_at": "Next attempt", "retry_until": "Retried until", "delivered_at": "Delivered",
        "payload": "Body",
    }
    column_searchable_list = [WebhookEvent.event_id]
    column_sortable_list = [WebhookEvent.id, WebhookEvent.status, WebhookEvent.attempts, WebhookEvent.created_at]
    column_default_sort = (WebhookEvent.id, True)
    column_filters = [
        PredicateFilter("Pending", "pending", WebhookEvent.status == webhooks.PENDING),
        PredicateFilter("Failed", "failed", WebhookEvent.status == webhooks.FAILED),
        PredicateFilter("Delivered", "delivered", WebhookEvent.status == webhooks.DELIVERED),
    ]
    column_formatters = {
        WebhookEvent.created_at: lambda m, a: when(m.created_at),
        WebhookEvent.next_attempt_at: lambda m, a: when(m.next_attempt_at) if m.status == webhooks.PENDING else "—",
        WebhookEvent.last_error: lambda m, a: m.last_error or "—",
    }
    column_formatters_detail = {
        **column_formatters,
        WebhookEvent.retry_until: lambda m, a: when(m.retry_until),
        WebhookEvent.delivered_at: lambda m, a: when(m.delivered_at),
        WebhookEvent.payload: lambda m, a: Markup(
            f'<pre class="mb-0">{escape(json.dumps(json.loads(m.payload), indent=2, ensure_ascii=False))}</pre>'
        ),
    }

    async def detail_cell(self, obj: Any, prop: str) -> Markup | None:
        """The details page's attempts: a table of them (a service reads them)."""
        return _attempts_table(await staff.webhook_attempts(obj.id)) if prop == "attempts" else None

    def literal_search(self, stmt: Select, term: str) -> Select:
        """By webhook id, or a user's id (either user the event names)."""
        if term.isascii() and term.isdigit() and int(term) <= _INTEGER_RANGES[Integer]:
            return stmt.where(or_(WebhookEvent.user_id == int(term), WebhookEvent.inviter_id == int(term)))
        return stmt.where(WebhookEvent.event_id == term)

    @action(name="resend", label="Resend", confirmation_message="Send again? The receiver gets the same webhook-id.")
    async def resend(self, request: Request) -> RedirectResponse:
        return await self.staff_action(request, webhook_service.resend)


_TARGET_VIEWS = {"user": "user", "session": "session", "webhook_event": "webhook-event"}


def _target_link(entry: StaffAction) -> Markup:
    if entry.target_type == audit.EXPORT_TARGET:
        return Markup(escape(f"{entry.target_id} rows"))
    identity = _TARGET_VIEWS.get(entry.target_type)
    label = f"{entry.target_type} {entry.target_id}"
    if identity is None:
        return Markup(escape(label))
    return Markup(f'<a href="../../{identity}/details/{entry.target_id}">{escape(label)}</a>')


class StaffActionAdmin(ReadOnlyView, model=StaffAction):
    """The audit log: read-only, like every view here (no route edits or deletes an entry)."""

    name, name_plural, icon = "Audit log entry", "Audit log", "fa-solid fa-clipboard-list"
    column_list = [
        StaffAction.id, StaffAction.created_at, StaffAction.staff, StaffAction.action, StaffAction.target_id,
        StaffAction.client_ip,
    ]
    column_details_list = column_list
    column_labels = {
        **LABELS, "staff": "Staff", "action": "Action", "target_id": "Target", "client_ip": "Client IP",
        "created_at": "When",
    }
    column_sortable_list = [StaffAction.id, StaffAction.created_at]
    column_default_sort = (StaffAction.id, True)
    column_filters = [
        PredicateFilter("Revoke", "revoke", StaffAction.action == "session.revoke"),
        PredicateFilter("Deactivate", "deactivate", StaffAction.action == "user.deactivate"),
        PredicateFilter("Reactivate", "reactivate", StaffAction.action == "user.reactivate"),
        PredicateFilter("Resend", "resend", StaffAction.action == "webhook.resend"),
        PredicateFilter("Export", "export", StaffAction.action.startswith("export.")),
    ]
    column_formatters = {
        StaffAction.created_at: lambda m, a: when(m.created_at),
        StaffAction.staff: lambda m, a: m.staff.username,
        StaffAction.target_id: lambda m, a: _target_link(m),
    }
    column_formatters_detail = column_formatters


# sqladmin names a view after its model; two views of User need their own URL names.
ReferralAdmin.identity = "referral"
SessionAdmin.identity = "session"

WebhookEventAdmin.identity = "webhook-event"
StaffActionAdmin.identity = "audit-log"

VIEWS = [
    UserAdmin, ReferralAdmin, SessionAdmin, ConfirmationCodeAdmin, StaffAccountAdmin, WebhookEventAdmin,
    StaffActionAdmin,
]
