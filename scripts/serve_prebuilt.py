"""Serve the app on one port from a frontend built beforehand; never rebuild it.

    python scripts/serve_prebuilt.py [--host 0.0.0.0] [--port 3000]

The container's server (scripts/docker-entrypoint.sh runs it). ``reflex run --env prod
--single-port`` compiles the app and runs the frontend build (``bun run export``)
every time it starts, so a container started with it would need bun and a writable
``.web``, and would take a minute to come up. This does what that command does after
its build step (Reflex 0.10.1, ``reflex.reflex._run_prod``): the Granian server,
``GRANIAN_WORKERS`` workers, with the compiled frontend in ``.web/build/client``
mounted next to the websocket (``/_event``), ``/api`` and ``/admin``. The Dockerfile
makes that build at image build time with ``reflex export --frontend-only --no-zip``.

Granian stops gracefully on SIGTERM and SIGINT (the workers finish, then the process
exits with status 0).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)

    # The app directory: rxconfig.py is found in the working directory.
    root = Path.cwd()
    if not (root / "rxconfig.py").is_file():
        print(f"serve_prebuilt: no rxconfig.py in {root}", file=sys.stderr)
        return 2

    from reflex_base import constants
    from reflex_base.config import get_config
    from reflex_base.environment import environment

    from reflex.utils import exec as reflex_exec
    from reflex.utils import prerequisites

    index = prerequisites.get_web_dir() / constants.Dirs.STATIC / "index.html"
    if not index.is_file():
        print(
            f"serve_prebuilt: {index} is missing; build the frontend first: "
            "reflex export --frontend-only --no-zip",
            file=sys.stderr,
        )
        return 2

    # What `reflex run --env prod --single-port` sets before it starts the server.
    environment.REFLEX_COMPILE_CONTEXT.set(constants.CompileContext.RUN)
    environment.REFLEX_ENV_MODE.set(constants.Env.PROD)
    environment.REFLEX_SKIP_COMPILE.set(True)
    config = get_config()
    config._set_persistent(frontend_port=args.port, backend_port=args.port, backend_host=args.host)

    print(f"serve_prebuilt: serving {root.name} on http://{args.host}:{args.port}", flush=True)
    reflex_exec.run_backend_prod(
        args.host,
        args.port,
        config.loglevel.subprocess_level(),
        mount_frontend_compiled_app=True,
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    sys.exit(main())
