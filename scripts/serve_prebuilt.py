"""Serve the app on one port from a frontend built beforehand; never rebuild it.

    python scripts/serve_prebuilt.py [--host 0.0.0.0] [--port 3000]

The server of the container (scripts/docker-entrypoint.sh) and of ``make run``
(scripts/run.sh). ``reflex run --env prod --single-port`` compiles the app and runs the
frontend build (``bun run export``) every time it starts, into the one ``.web`` of the
checkout; this serves a build made before (``reflex export --frontend-only --no-zip``)
from ``.web`` or ``REFLEX_WEB_WORKDIR``, so several instances can each serve a copy of
their own. The Reflex internals it needs live in ``referral_app.infra.frontend``.

Granian stops gracefully on SIGTERM and SIGINT (the workers finish, then the process
exits with status 0).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)

    # The app directory: rxconfig.py is found in the working directory.
    root = Path.cwd()
    sys.path.insert(0, str(root))
    from referral_app.infra.frontend import serve_prebuilt

    return serve_prebuilt(args.host, args.port, root)


if __name__ == "__main__":
    sys.exit(main())
