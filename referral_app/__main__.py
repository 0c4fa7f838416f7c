"""Command line: ``python -m referral_app cleanup``."""

from __future__ import annotations

import argparse
import sys

from referral_app.db import session_scope
from referral_app.domain.maintenance import purge_expired


def cleanup() -> int:
    with session_scope() as db:
        purged = purge_expired(db)
    print(f"removed {purged.codes} codes, {purged.sessions} sessions, {purged.sends} send-log rows")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m referral_app")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("cleanup", help="delete expired codes and sessions and old send-log rows")
    args = parser.parse_args(argv)
    return {"cleanup": cleanup}[args.command]()


if __name__ == "__main__":
    sys.exit(main())
