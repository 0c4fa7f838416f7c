"""Simulated browser tabs on the profile page, for ``bench/live_pages.py``.

A tab speaks Reflex's own protocol with python-socketio's asyncio client, as the compiled
frontend does (``reflex_base/.templates/web/utils/state.js``): Socket.IO at path
``/_event``, namespace ``/_event``, the tab's token in the query, the page's origin and
the session cookie in the handshake, and the boot event ``hydrate_and_load`` (with the
page's router data and the compiled state's hashes) in the CONNECT packet's auth. The
server then sends what differs from the compiled defaults and runs the page's ``on_load``. A tab records every ``invited_count`` the server sends it.

Tabs run in a few OS processes (:func:`tab_process`, asyncio in each), so that the
client side is not what limits the benchmark.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import resource
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_NAME = "reflex___state____state"  # Reflex's root state, as the frontend names it
HYDRATE_AND_LOAD = f"{STATE_NAME}.hydrate_and_load"
NAMESPACE = "/_event"
SESSION_COOKIE = "referral_session"  # referral_app/infra/cookies.py, over plain HTTP
PROFILE_PATH = "/profile"
CONNECTS_AT_ONCE = 16  # per process: tabs whose connection is in progress at the same time


@dataclass(frozen=True)
class TabSpec:
    owner_id: int
    token: str  # the owner's session token (the cookie's value)


def raise_open_files_limit() -> tuple[int, int]:
    """Soft ``RLIMIT_NOFILE`` up to the hard limit (inherited by every child); returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


@dataclass(frozen=True)
class CompiledState:
    """What the compiled frontend sends on its first connect besides the event (``.web/utils/context.jsx``)."""

    hashes: list[str]  # ``initialStateHashes``: the server then sends only what differs from the defaults
    schema: str  # ``stateSchema``


def compiled_state(web_dir: Path) -> CompiledState | None:
    """The built frontend's state hashes and schema, or None when ``web_dir`` has no build."""
    try:
        source = (web_dir / "utils" / "context.jsx").read_text()
    except OSError:
        return None
    hashes = re.search(r"export const initialStateHashes = (\[.*?\])", source)
    schema = re.search(r"export const stateSchema = (\"[^\"]*\")", source)
    if not hashes or not schema:
        return None
    return CompiledState(json.loads(hashes.group(1)), json.loads(schema.group(1)))


def boot_event(path: str = PROFILE_PATH, compiled: CompiledState | None = None, token: str | None = None) -> dict[str, Any]:
    """The event a page sends in its CONNECT packet on its first connect (``initialEvents(true)``),
    with the session binding the page keeps in localStorage for the cookie's ``token``
    (referral_app/infra/cookies.py; the bench runs with the server's SECRET_KEY)."""
    payload: dict[str, Any] = {"hashes": compiled.hashes} if compiled else {}
    if token is not None:
        from referral_app.infra.cookies import session_binding
        from referral_app.infra.framework.reflex_state import client_storage_key
        from referral_app.state.base import SessionState

        payload["vars"] = {client_storage_key(SessionState, "session_binding"): session_binding(token)}
    return {"name": HYDRATE_AND_LOAD, "payload": payload, "router_data": {"pathname": path, "asPath": path}}


def connect_auth(compiled: CompiledState | None, token: str | None = None) -> dict[str, Any]:
    """The CONNECT packet's auth: the boot event and, with a build, the state schema."""
    auth: dict[str, Any] = {"event": boot_event(compiled=compiled, token=token)}
    if compiled:
        auth["state_schema"] = compiled.schema
    return auth


def find_var(delta: Any, name: str) -> tuple[bool, Any]:
    """``(found, value)`` of var ``name`` in a state delta (``{state: {name + suffix: value}}``).

    Reflex suffixes a state's own vars (``invited_count_rx_state_``); computed vars keep their
    name. The first substate that has it wins (only the profile state has these vars).
    """
    if not isinstance(delta, dict):
        return False, None
    for fields in delta.values():
        if not isinstance(fields, dict):
            continue
        for key in (f"{name}_rx_state_", name):
            if key in fields:
                return True, fields[key]
    return False, None


class Tab:
    """One open profile page. ``on_count(owner_id, count, monotonic_time)`` hears each new count."""

    def __init__(self, base_url: str, spec: TabSpec, on_count, http_session=None,
                 compiled: CompiledState | None = None) -> None:
        import socketio

        self.base_url, self.spec, self.on_count, self.compiled = base_url, spec, on_count, compiled
        self.token = str(uuid.uuid4())  # the tab's client token (sessionStorage in a browser)
        # The compiled default, which the page holds until the server sends another value.
        self.count: int = 0
        self.phone = ""
        self.loaded = asyncio.Event()
        self.dropped = False
        # The cookie goes in the websocket's own headers: given a ``Cookie`` header, python-engineio
        # would move it into the HTTP session's cookie jar, which the process's tabs share.
        cookie = {"headers": {"Cookie": f"{SESSION_COOKIE}={spec.token}"}}
        self.client = socketio.AsyncClient(reconnection=False, http_session=http_session, handle_sigint=False,
                                           websocket_extra_options=cookie)
        self.client.on("event", self._on_update, namespace=NAMESPACE)
        self.client.on("disconnect", self._on_disconnect, namespace=NAMESPACE)

    async def _on_update(self, update: Any) -> None:
        received = time.monotonic()
        delta = update.get("delta") if isinstance(update, dict) else None
        found, count = find_var(delta, "invited_count")
        has_phone, phone = find_var(delta, "phone_number")
        if has_phone and phone:
            self.phone = phone
        loaded_found, loaded = find_var(delta, "loaded")
        if found and isinstance(count, int) and count > self.count:
            self.count = count
            if self.loaded.is_set():
                self.on_count(self.spec.owner_id, count, received)
        if loaded_found and loaded:
            self.loaded.set()

    async def _on_disconnect(self, *args) -> None:
        self.dropped = True

    async def open(self, timeout: float) -> None:
        """Connect and wait until the page shows the profile (``loaded`` with a count)."""
        await self.client.connect(
            f"{self.base_url}?token={self.token}",
            headers={"Origin": self.base_url},
            transports=["websocket"],
            namespaces=[NAMESPACE],
            socketio_path=NAMESPACE,
            auth=connect_auth(self.compiled, self.spec.token),
            wait_timeout=timeout,
        )
        try:
            await asyncio.wait_for(self.loaded.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"profile not loaded after {timeout:g} s (connected {self.client.connected}, "
                               f"dropped {self.dropped}, count {self.count})") from None

    async def close(self) -> None:
        try:
            await self.client.disconnect()
        except Exception:  # noqa: BLE001 - already gone
            pass


async def _run_tabs(base_url: str, specs: list[TabSpec], reports, stop, open_timeout: float,
                    compiled: CompiledState | None) -> None:
    import aiohttp

    def on_count(owner_id: int, count: int, when: float) -> None:
        reports.put(("count", owner_id, count, when))

    # One HTTP client for the process's tabs: no limit on connections (each websocket holds one),
    # and no shared cookie jar (each tab sends its own cookie).
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar())
    tabs = [Tab(base_url, spec, on_count, session, compiled) for spec in specs]
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    errors: list[str] = []

    open_times: list[float] = []

    async def open_one(tab: Tab) -> bool:
        async with gate:
            try:
                begun = time.monotonic()
                await tab.open(open_timeout)
                open_times.append(time.monotonic() - begun)
                return True
            except Exception as error:  # noqa: BLE001 - counted and reported, the run goes on
                errors.append(f"{type(error).__name__}: {error}"[:200])
                return False

    async def stopped() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.2)

    started = time.monotonic()
    opening = asyncio.ensure_future(asyncio.gather(*(open_one(tab) for tab in tabs)))
    stopping = asyncio.ensure_future(stopped())
    await asyncio.wait([opening, stopping], return_when=asyncio.FIRST_COMPLETED)
    if not opening.done():  # stopped (the benchmark failed or was interrupted) while opening
        opening.cancel()
        await asyncio.gather(*(tab.close() for tab in tabs))
        await session.close()
        return
    opened = opening.result()
    failed = [tab.spec.owner_id for tab, ok in zip(tabs, opened, strict=True) if not ok]
    reports.put(("ready", os.getpid(), sum(opened), failed, errors[:5], time.monotonic() - started, open_times))
    await stopping
    dropped = sum(1 for tab, ok in zip(tabs, opened, strict=True) if ok and tab.dropped)
    await asyncio.gather(*(tab.close() for tab in tabs))
    await session.close()
    reports.put(("closed", os.getpid(), dropped))


def tab_process(base_url: str, specs: list[TabSpec], reports, stop, open_timeout: float,
                compiled: CompiledState | None = None) -> None:
    """Entry point of one tab process: open ``specs``' tabs, keep them until ``stop`` is set.

    Puts on ``reports``: ``("ready", pid, opened, failed_owner_ids, first_errors, seconds,
    open_times)`` once every tab is open (or failed), ``open_times`` being the seconds from each
    tab's connect to its loaded profile, ``("count", owner_id, count, monotonic_time)`` for each new count
    a loaded tab receives, and ``("closed", pid, dropped)`` at the end, ``dropped`` being the
    tabs the server disconnected meanwhile.
    """
    raise_open_files_limit()
    asyncio.run(_run_tabs(base_url, specs, reports, stop, open_timeout, compiled))


class TabFleet:
    """``len(specs)`` tabs spread over ``processes`` OS processes (forked)."""

    def __init__(self, base_url: str, specs: list[TabSpec], processes: int, open_timeout: float = 120,
                 compiled: CompiledState | None = None) -> None:
        context = multiprocessing.get_context("fork")
        self.reports = context.Queue()
        self.stop_event = context.Event()
        chunks = [specs[i::processes] for i in range(processes)]
        self.procs = [
            context.Process(target=tab_process, args=(base_url, chunk, self.reports, self.stop_event, open_timeout, compiled),
                            daemon=True)
            for chunk in chunks if chunk
        ]

    def start(self) -> None:
        for proc in self.procs:
            proc.start()

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs if proc.pid is not None]

    def stop(self, timeout: float = 60) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.1, deadline - time.monotonic()))
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(5)
