"""How the programme grows: the numbers of the admin dashboard, and the rows of the CSV exports.

Days are UTC days. Every read walks an index (see ``referral_app.models``): the dashboard
stays fast at 100,000 users, and an export reads the table in keyset chunks of short
transactions, so memory does not grow with the table and no long transaction is held
(on SQLite that would block every writer).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, bindparam, cast, func, select
from sqlmodel import Session

from referral_app.domain import audit
from referral_app.models import CodeSend, User

DAYS = 30
TOP_INVITERS = 10
EXPORT_CHUNK = 1000


@dataclass(frozen=True)
class Inviter:
    user_id: int
    phone_number: str
    invite_code: str
    invited_count: int


@dataclass(frozen=True)
class Dashboard:
    """``signups`` and ``activations``: (day, count) for each of the last ``DAYS`` days, oldest first."""

    users: int
    activated: int
    codes_sent_today: int
    signups: list[tuple[date, int]]
    activations: list[tuple[date, int]]
    top_inviters: list[Inviter]

    @property
    def activation_rate(self) -> float:
        """The share of users who entered someone's code, 0 to 1 (0 with no users)."""
        return self.activated / self.users if self.users else 0.0


_users = User.__table__
_sends = CodeSend.__table__
_TOTALS = select(func.count(), func.count(_users.c.invited_by_id)).select_from(_users)
_SENT_SINCE = select(func.count()).select_from(_sends).where(_sends.c.sent_at >= bindparam("since"))
_TOP = (
    select(_users.c.id, _users.c.phone_number, _users.c.invite_code, _users.c.invited_count)
    .where(_users.c.invited_count > 0)
    .order_by(_users.c.invited_count.desc(), _users.c.id.desc())
    .limit(bindparam("rows"))
)


def _day(db: Session, column) -> Any:
    """The UTC day of a timestamp column, in the session's SQL dialect."""
    if db.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)  # SQLite keeps UTC text: 'YYYY-MM-DD HH:MM:SS...'


def _per_day(db: Session, column, first_day: date, days: int) -> list[tuple[date, int]]:
    day = _day(db, column)
    since = datetime.combine(first_day, time(), UTC)
    rows = db.execute(select(day, func.count()).where(column >= since).group_by(day)).all()
    counts = {value if isinstance(value, date) else date.fromisoformat(value): n for value, n in rows}
    return [(first_day + timedelta(days=i), counts.get(first_day + timedelta(days=i), 0)) for i in range(days)]


def dashboard(db: Session, now: datetime, days: int = DAYS, top: int = TOP_INVITERS) -> Dashboard:
    """The dashboard's numbers at ``now``: totals, the last ``days`` UTC days (today included),
    and the ``top`` users with the most referrals (ties: the newer user first)."""
    today = now.astimezone(UTC).date()
    first_day = today - timedelta(days=days - 1)
    users, activated = db.execute(_TOTALS).one()
    sent_today = db.execute(_SENT_SINCE, {"since": datetime.combine(today, time(), UTC)}).scalar_one()
    result = Dashboard(
        users=users,
        activated=activated,
        codes_sent_today=sent_today,
        signups=_per_day(db, _users.c.created_at, first_day, days),
        activations=_per_day(db, _users.c.activated_at, first_day, days),
        top_inviters=[Inviter(*row) for row in db.execute(_TOP, {"rows": top}).all()],
    )
    db.rollback()
    return result


# --- exports ------------------------------------------------------------------------------

USER_COLUMNS = ("id", "phone_number", "invite_code", "invited_by_id", "activated_at", "invited_count",
                "is_active", "created_at")
REFERRAL_COLUMNS = ("user_id", "phone_number", "inviter_id", "inviter_phone_number", "invite_code", "activated_at")

_inviter = _users.alias("inviter")
_USER_CHUNK = (
    select(*(_users.c[name] for name in USER_COLUMNS))
    .where(_users.c.id > bindparam("after"))
    .order_by(_users.c.id)
    .limit(bindparam("rows"))
)
_REFERRAL_CHUNK = (
    select(
        _users.c.id, _users.c.phone_number, _inviter.c.id, _inviter.c.phone_number, _inviter.c.invite_code,
        _users.c.activated_at,
    )
    .select_from(_users.join(_inviter, _inviter.c.id == _users.c.invited_by_id))
    .where(_users.c.id > bindparam("after"))
    .order_by(_users.c.id)
    .limit(bindparam("rows"))
)


def _chunks(db: Session, query, chunk: int) -> Iterator[list[tuple]]:
    after = 0
    while True:
        rows = [tuple(row) for row in db.execute(query, {"after": after, "rows": chunk}).all()]
        db.rollback()  # each chunk its own short transaction
        if not rows:
            return
        yield rows
        after = rows[-1][0]


_EXPORT_COUNTS = {
    audit.EXPORT_USERS: select(func.count()).select_from(_users),
    audit.EXPORT_REFERRALS: select(func.count()).select_from(_users).where(_users.c.invited_by_id.is_not(None)),
}


def record_export(db: Session, actor: audit.StaffActor, action: str, now: datetime) -> int:
    """Write the audit log entry of an export (``audit.EXPORT_USERS`` or ``EXPORT_REFERRALS``)
    and commit it, before the first row leaves; returns the number of rows it holds
    (as counted now: rows written while the export streams may make it differ slightly).

    Raises:
        KeyError: for an action that is not an export.
    """
    rows = db.execute(_EXPORT_COUNTS[action]).scalar_one()
    audit.record(db, actor, action, audit.EXPORT_TARGET, rows, now)
    db.commit()
    return rows


def export_users(db: Session, chunk: int = EXPORT_CHUNK) -> Iterator[list[tuple]]:
    """Every user as a row of ``USER_COLUMNS``, by id, ``chunk`` rows at a time (read lazily)."""
    return _chunks(db, _USER_CHUNK, chunk)


def export_referrals(db: Session, chunk: int = EXPORT_CHUNK) -> Iterator[list[tuple]]:
    """Every activation (who entered whose code, when) as a row of ``REFERRAL_COLUMNS``, by user id."""
    return _chunks(db, _REFERRAL_CHUNK, chunk)
