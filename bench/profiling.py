"""py-spy on the server's worker during a wrk run, and what its samples say: where the GIL
time goes (by layer, package and function) and where the threads wait."""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from pathlib import Path

from bench.harness import py_spy_path
from bench.scenarios import Wrk, WrkSpec


def py_spy_profile(wrk: Wrk, spec: WrkSpec, seconds: int, out_dir: Path) -> dict:
    """Record the server worker with py-spy while ``spec`` runs; summarise the samples.

    Two recordings of the same seconds, side by side (non-blocking: the worker is not paused):
    ``--gil`` samples only the thread holding the GIL, i.e. the Python work of this
    single-process server; ``--idle`` samples every thread, to see where the requests wait.
    """
    pid = wrk.server.worker_pid()
    holder: dict = {}
    paths = {view: out_dir / f"py-spy-{spec.scenario}-{view}.txt" for view in ("gil", "threads")}

    def record():
        time.sleep(1)  # let wrk ramp up
        procs = {
            view: subprocess.Popen(
                [py_spy_path(), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(PY_SPY_RATE),
                 "--nonblocking", "--format", "raw", "--output", str(paths[view]), flag],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            for view, flag in (("gil", "--gil"), ("threads", "--idle"))
        }
        for view, proc in procs.items():
            holder[view] = (proc.wait(), proc.stdout.read())

    results = wrk.run(spec, duration=seconds + 2, record=False, during=record)
    for view, path in paths.items():
        if holder.get(view, (1, ""))[0] != 0 or not path.exists():
            raise RuntimeError(f"py-spy ({view}) failed: {holder.get(view, (None, ''))[1][-2000:]}")
    summary = summarise_gil(paths["gil"].read_text(), seconds)
    summary["waits"] = summarise_threads(paths["threads"].read_text(), seconds)
    summary.update(result=results[0], pid=pid, paths=paths)
    return summary


PY_SPY_RATE = 200  # samples per second
# Frames above the request handling (process start, event loop, thread-pool loop): left out
# of the "functions" table, which would otherwise start with them at ~100%.
PLUMBING = ("click/", "multiprocessing/", "reflex/reflex.py", "reflex/utils/exec.py", "granian/server/",
            "asyncio/base_events.py", "asyncio/events.py", "threading.py", "concurrent/", "<module>",
            "anyio/_backends/_asyncio.py", "granian/_futures.py", "contextvars", "selectors.py", "queue.py")
COMPONENTS = {  # first part of a frame's file path → component
    "referral_app": "referral_app (routes, domain)",
    "sqlalchemy": "SQLAlchemy", "sqlmodel": "SQLModel", "psycopg2": "psycopg2",
    "fastapi": "FastAPI", "starlette": "Starlette", "pydantic": "pydantic", "pydantic_core": "pydantic",
    "anyio": "anyio (thread pool)", "threading.py": "threading / queue", "queue.py": "threading / queue",
    "concurrent": "threading / queue", "asyncio": "asyncio event loop", "selectors.py": "asyncio event loop",
    "granian": "Granian", "reflex": "Reflex", "reflex_base": "Reflex", "json": "json",
    "phonenumbers": "phonenumbers", "hmac.py": "hmac / hashlib", "hashlib.py": "hmac / hashlib",
    "secrets.py": "hmac / hashlib", "logging": "logging", "contextlib.py": "contextlib",
}
# The modules of the ASGI layers every request passes (referral_app/infra/stack.py).
_FRAME = re.compile(r"(?P<func>[^;]*?) \((?P<file>[^;()]*?)(?::(?P<line>\d+))?\)")


def _stacks(raw_text: str):
    """(frames [(function, file)], count) per line of py-spy's raw (collapsed) output."""
    for line in raw_text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield [(m.group("func"), m.group("file")) for m in _FRAME.finditer(stack)], int(count)


def _component(file: str) -> str:
    head = file.split("/", 1)[0]
    return COMPONENTS.get(head, "other: " + head)


# The app's ASGI middleware, so that its time is not counted as the app's own: the classes of
# the stack (``infra/stack.py``; py-spy names a method ``Class.method``, wherever the class
# lives) and the modules that hold only middleware and its helpers. tests/test_bench_profiling.py
# checks both against the app.
MIDDLEWARE_CLASSES = frozenset({
    "ProxyHeadersMiddleware", "MetricsMiddleware", "RequestIdMiddleware", "RequestGate", "WebsocketLimit",
    "BodyWatch", "FrontendServing", "ResponseHeaders", "DatabaseUnavailableGuard", "ApiRequestMiddleware",
    "HeadAsGetMiddleware",
})
MIDDLEWARE_MODULES = ("referral_app/infra/stack.py", "referral_app/infra/logs.py", "referral_app/infra/asgi.py",
                      "referral_app/infra/gate.py", "referral_app/infra/api_requests.py",
                      "referral_app/infra/client_ip.py")


def _is_middleware(fn: str, file: str) -> bool:
    return file.startswith("referral_app/") and (
        file.startswith(MIDDLEWARE_MODULES) or fn.split(".", 1)[0] in MIDDLEWARE_CLASSES)


LAYERS = [  # (layer, test on one frame (function, file)); each sample goes to its innermost matching frame
    ("connection pool: checkout, pre-ping `SELECT 1`, return", lambda fn, file: file.startswith("sqlalchemy/pool/")
     or "do_ping" in fn or fn in ("Engine.raw_connection", "Connection._revalidate_connection")),
    ("transaction end: commit / rollback / close", lambda fn, file: file.startswith(("sqlalchemy/", "sqlmodel/"))
     and fn.split(".")[-1] in ("commit", "rollback", "close", "_close_impl", "_remove_snapshot")),
    ("SQLAlchemy + psycopg2: build, compile, execute, fetch, ORM rows",
     lambda fn, file: file.startswith(("sqlalchemy/", "sqlmodel/", "psycopg2/"))),
    ("pydantic: request/response validation and JSON", lambda fn, file: file.startswith("pydantic")),
    ("app's ASGI middleware (the layers of `infra/stack.py`, `logs.py`)", lambda fn, file: _is_middleware(fn, file)),
    ("app code: routes, dependencies, domain", lambda fn, file: file.startswith("referral_app/")),
    ("FastAPI: routing, dependency injection, serialization", lambda fn, file: file.startswith("fastapi/")),
    ("Starlette: middleware, routing, responses", lambda fn, file: file.startswith("starlette/")),
    ("Reflex ASGI wrapper", lambda fn, file: file.startswith("reflex")),
    ("thread-pool hand-off (anyio, threading, queue)",
     lambda fn, file: file.startswith(("anyio/", "threading.py", "queue.py", "concurrent/"))),
    ("event loop and Granian I/O", lambda fn, file: file.startswith(("asyncio/", "selectors.py", "granian/"))),
]


def summarise_gil(raw_text: str, seconds: int) -> dict:
    """Self time per component (innermost frame), inclusive time per component and per function."""
    total = 0
    leaf, comps, funcs, layers, self_funcs = Counter(), Counter(), Counter(), Counter(), Counter()
    for frames, n in _stacks(raw_text):
        if not frames:
            continue
        total += n
        leaf[_component(frames[-1][1])] += n
        self_funcs[f"{frames[-1][0]} ({frames[-1][1]})"] += n
        for fn, file in reversed(frames):
            layer = next((name for name, test in LAYERS if test(fn, file)), None)
            if layer:
                layers[layer] += n
                break
        else:
            layers["other: " + frames[-1][1].split("/", 1)[0]] += n
        for comp in {_component(file) for _, file in frames}:
            comps[comp] += n
        for func, file in set(frames):
            if not file.startswith(PLUMBING) and func != "<module>":
                funcs[(func, file)] += n
    total = total or 1
    return {
        "samples": total,
        "gil_busy": total / (PY_SPY_RATE * seconds),
        "self": [(name, n * 100 / total) for name, n in leaf.most_common()],
        "inclusive_components": [(name, n * 100 / total) for name, n in comps.most_common()],
        "top": [(f"{func} ({file})", n * 100 / total) for (func, file), n in funcs.most_common(24)],
        "layers": [(name, n * 100 / total) for name, n in layers.most_common()],
        "self_functions": [(name, n * 100 / total) for name, n in self_funcs.most_common(15)],
    }


WAIT_STATES = [  # (state, test on the stack's frames), first match wins
    ("waiting on a PostgreSQL advisory lock (`domain/locks.py`)", lambda f, leaf: any(
        fn == "lock" and file.startswith("referral_app/domain/locks.py") for fn, file in f)),
    ("waiting for a pooled connection (QueuePool checkout)", lambda f, leaf: any(fn == "QueuePool._do_get" for fn, _ in f)),
    ("opening a new PostgreSQL connection", lambda f, leaf: leaf[1].startswith("psycopg2/")),
    ("pool pre-ping round trip (`SELECT 1` at checkout)", lambda f, leaf: "do_ping" in leaf[0]),
    ("query or commit: waiting on PostgreSQL", lambda f, leaf: leaf[0].split(".")[-1] in (
        "do_execute", "do_executemany", "do_commit", "do_rollback", "do_execute_no_params")),
    ("thread-pool thread idle (no work)", lambda f, leaf: leaf[1] == "threading.py" and any(
        file == "queue.py" for _, file in f)),
    ("event loop waiting for I/O (select)", lambda f, leaf: leaf[1] == "selectors.py"),
]


def summarise_threads(raw_text: str, seconds: int) -> list[tuple[str, float]]:
    """Average number of worker threads in each state over the recording."""
    states = Counter()
    for frames, n in _stacks(raw_text):
        if not frames:
            continue
        for state, test in WAIT_STATES:
            if test(frames, frames[-1]):
                states[state] += n
                break
        else:
            states["running Python or waiting for the GIL"] += n
    return [(state, n / (PY_SPY_RATE * seconds)) for state, n in states.most_common()]
