"""Command line: ``python -m referral_app cleanup``, ``create-admin NAME``, ``deactivate-admin NAME``,
``reactivate-admin NAME`` and ``deliver-webhooks [--until-idle]``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from referral_app.domain.errors import DomainError
from referral_app.i18n import translate
from referral_app.services import maintenance, staff


def cleanup() -> int:
    purged = asyncio.run(maintenance.purge_expired())
    print(f"removed {purged.codes} codes, {purged.sessions} sessions, {purged.sends} send-log rows, "
          f"{purged.staff_sessions} staff sessions, {purged.webhook_events} delivered webhook events")
    return 0


def _read_password() -> str:
    """From a prompt (twice) on a terminal, else the first line of stdin; never an argument."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise SystemExit("The passwords differ.")
        return password
    return sys.stdin.readline().rstrip("\r\n")


def create_admin(username: str) -> int:
    password = _read_password()
    try:
        account = asyncio.run(staff.create_staff(username, password))
    except DomainError as error:
        print(translate(error.code, **error.params), file=sys.stderr)
        return 1
    print(f"created staff account {account.username!r}; sign in at /admin")
    return 0


def set_admin_active(username: str, active: bool) -> int:
    """Deactivation also ends the account's admin sessions at once."""
    try:
        asyncio.run(staff.reactivate_staff(username) if active else staff.deactivate_staff(username))
    except DomainError as error:
        print(translate(error.code, **error.params), file=sys.stderr)
        return 1
    print(f"staff account {username!r} {'reactivated' if active else 'deactivated; its admin sessions are ended'}")
    return 0


def deliver_webhooks(until_idle: bool) -> int:
    """Run the delivery loop in this process (the server runs one too); Ctrl-C stops it."""
    from referral_app.domain import webhooks
    from referral_app.infra.logs import configure_logging
    from referral_app.infra.webhooks import webhook_delivery

    if not webhooks.enabled():
        print("WEBHOOK_URL is not set: webhooks are off.", file=sys.stderr)
        return 2
    configure_logging()
    try:
        asyncio.run(webhook_delivery(until_idle=until_idle))
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m referral_app")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("cleanup", help="delete expired codes and sessions and old send-log rows")
    create = commands.add_parser("create-admin", help="create a staff account (password from a prompt or stdin)")
    create.add_argument("username")
    for name, help_text in (("deactivate-admin", "deactivate a staff account and end its admin sessions"),
                            ("reactivate-admin", "let a deactivated staff account log in again")):
        commands.add_parser(name, help=help_text).add_argument("username")
    deliver = commands.add_parser("deliver-webhooks", help="send pending webhook events (the server does too)")
    deliver.add_argument("--until-idle", action="store_true", help="stop once no event is pending")
    args = parser.parse_args(argv)
    if args.command == "create-admin":
        return create_admin(args.username)
    if args.command in ("deactivate-admin", "reactivate-admin"):
        return set_admin_active(args.username, args.command == "reactivate-admin")
    if args.command == "deliver-webhooks":
        return deliver_webhooks(args.until_idle)
    return cleanup()


if __name__ == "__main__":
    sys.exit(main())
