"""The audit log of staff actions: who did what to which record, when, from where.

Each entry is written in the transaction of the action it records, so there is never an
action without its entry or an entry without its action. The app has no code that updates
or deletes an entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlmodel import Session

from referral_app.models import StaffAction

REVOKE_SESSION = "session.revoke"
DEACTIVATE_USER = "user.deactivate"
REACTIVATE_USER = "user.reactivate"
RESEND_WEBHOOK = "webhook.resend"
# A CSV export of the staff console: the entry's target is ("rows", how many rows it holds).
EXPORT_USERS = "export.users"
EXPORT_REFERRALS = "export.referrals"
EXPORT_TARGET = "rows"

_ADD = insert(StaffAction.__table__)


@dataclass(frozen=True)
class StaffActor:
    """The signed-in staff account behind an action, and the client address it came from."""

    staff_id: int
    client_ip: str


def record(db: Session, actor: StaffActor, action: str, target_type: str, target_id: int, now: datetime) -> None:
    """Add an entry to the open transaction (the action's own; not committed here)."""
    db.execute(
        _ADD,
        {
            "staff_id": actor.staff_id, "action": action, "target_type": target_type, "target_id": target_id,
            "client_ip": actor.client_ip, "created_at": now,
        },
    )
