"""Page state that someone else wrote is never unpickled (referral_app/infra/state_mac.py).

A private redis-server (started here, stopped by pid) holds the states of Reflex's own
state managers, made as the app makes them (``StateManager.create()`` with
``REFLEX_REDIS_URL``, or the disk manager with ``REFLEX_STATES_WORKDIR``). A blob whose
unpickling would create a marker file is written where a tab's state lives: loading that
tab must not create the file, and gives a fresh state.
"""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path

import pytest
import reflex as rx

import referral_app.referral_app  # noqa: F401  (the app installs the MAC at import)
from referral_app.infra import state_mac
from referral_app.settings import settings
from referral_app.state.login import LoginState
from tests.private_services import needs_redis, private_redis_url

SITE_PACKAGES = Path(rx.__file__).resolve().parent.parent


class Exploit:
    """Unpickling this runs code: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def exploit_blob(marker: Path) -> bytes:
    """What an attacker writes: a pickle shaped like Reflex's ``(schema, state)``."""
    return pickle.dumps(("schema", Exploit(marker)))


def test_the_exploit_runs_code_when_unpickled(tmp_path):
    """The control: these bytes do create the file when something unpickles them."""
    marker = tmp_path / "control"
    pickle.loads(exploit_blob(marker))
    assert marker.exists()


def forged_with_our_magic(marker: Path) -> bytes:
    """The format right, the tag made with a key that is not the app's."""
    payload = exploit_blob(marker)
    return state_mac.STATE.magic + state_mac.hkdf_sha256(b"guess", b"x") + payload


@pytest.fixture(scope="module")
def redis_url():
    with private_redis_url() as url:
        yield url


@pytest.fixture
def redis_manager(redis_url, monkeypatch):
    """Makes Reflex's state manager as the app does with REFLEX_REDIS_URL at the private Redis."""
    from reflex.istate.manager import StateManager
    from reflex_base.config import get_config

    config = get_config()
    monkeypatch.setenv("REFLEX_REDIS_URL", redis_url)
    monkeypatch.setattr(config, "redis_url", redis_url)
    monkeypatch.setattr(config, "state_manager_mode", config.state_manager_mode)  # create() sets it

    def make():
        from reflex.istate.manager.redis import StateManagerRedis

        manager = StateManager.create()
        assert isinstance(manager, StateManagerRedis)
        return manager

    return make


def rejected_on_metrics() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("referral_state_blobs_rejected_total", {"kind": "state"}) or 0.0


def token_for(ident: str, cls=LoginState):
    from reflex.istate.manager.token import BaseStateToken

    return BaseStateToken(ident=ident, cls=cls)


def login_of(root) -> LoginState:
    return root.get_substate(LoginState.get_full_name().split("."))


@pytest.mark.e2e
@needs_redis
@pytest.mark.parametrize("blob", [exploit_blob, forged_with_our_magic])
def test_a_pickle_planted_in_redis_is_not_unpickled(redis_manager, tmp_path, blob):
    marker = tmp_path / "pwned"
    before, counted_before = state_mac.rejected_blobs(), rejected_on_metrics()

    async def scenario():
        manager = redis_manager()
        token = token_for("planted-tab")
        # Under the keys of the whole tree this tab loads: the root state and the login page's.
        for cls in (rx.State, LoginState):
            await manager.redis.set(token._state_key(cls), blob(marker))
        try:
            return await manager.get_state(token)
        finally:
            await manager.close()

    root = asyncio.run(scenario())
    assert not marker.exists()
    assert login_of(root).step == "phone" and login_of(root).phone_number == ""  # a fresh state
    assert state_mac.rejected_blobs() >= before + 2
    assert rejected_on_metrics() >= counted_before + 2  # /metrics shows it


@pytest.mark.e2e
@needs_redis
def test_state_written_to_redis_is_sealed_and_read_back(redis_manager):
    async def scenario():
        manager = redis_manager()
        token = token_for("round-trip-tab")
        try:
            async with manager.modify_state(token) as root:
                login_of(root).phone_number = "+79123456789"
                login_of(root).step = "code"
            raw = await manager.redis.get(token._state_key(LoginState))
        finally:
            await manager.close()
        reader = redis_manager()  # another worker
        try:
            return raw, await reader.get_state(token)
        finally:
            await reader.close()

    raw, root = asyncio.run(scenario())
    assert raw.startswith(state_mac.STATE.magic)
    assert login_of(root).phone_number == "+79123456789" and login_of(root).step == "code"


@pytest.mark.e2e
@needs_redis
def test_state_sealed_under_another_secret_key_is_a_fresh_state(redis_manager, monkeypatch):
    """A key change (or another app's blob) costs the tab its state, nothing else."""

    async def write(token):
        manager = redis_manager()
        try:
            async with manager.modify_state(token) as root:
                login_of(root).phone_number = "+79123456789"
        finally:
            await manager.close()

    async def read(token):
        manager = redis_manager()
        try:
            return await manager.get_state(token)
        finally:
            await manager.close()

    token = token_for("rotated-tab")
    asyncio.run(write(token))
    monkeypatch.setattr(settings, "secret_key", "another-secret-key")
    assert login_of(asyncio.run(read(token))).phone_number == ""


@pytest.fixture
def disk_manager(tmp_path, monkeypatch):
    """Reflex's disk state manager (no Redis: what scripts/run.sh uses, REFLEX_STATES_WORKDIR)."""
    from reflex.istate.manager.disk import StateManagerDisk

    monkeypatch.setenv("REFLEX_STATES_WORKDIR", str(tmp_path / "states"))
    return StateManagerDisk


def test_a_state_file_planted_on_disk_is_not_unpickled(disk_manager, tmp_path):
    marker = tmp_path / "pwned"

    async def scenario():
        manager = disk_manager()
        token = token_for("planted-tab")
        for cls in (rx.State, LoginState):
            manager.token_path(token.with_cls(cls)).write_bytes(exploit_blob(marker))
        try:
            return await manager.get_state(token)
        finally:
            await manager.close()

    root = asyncio.run(scenario())
    assert not marker.exists()
    assert login_of(root).phone_number == ""


def test_state_written_to_disk_is_sealed_and_read_back(disk_manager):
    token = token_for("round-trip-tab")

    async def write():
        manager = disk_manager()
        try:
            async with manager.modify_state(token) as root:
                login_of(root).phone_number = "+79123456789"
        finally:
            await manager.close()  # flushes the debounced writes
        return manager.token_path(token.with_cls(LoginState)).read_bytes()

    async def read():
        manager = disk_manager()  # a new process would start with nothing in memory
        try:
            return await manager.get_state(token)
        finally:
            await manager.close()

    raw = asyncio.run(write())
    assert raw.startswith(state_mac.STATE.magic)
    assert login_of(asyncio.run(read())).phone_number == "+79123456789"


@pytest.mark.e2e
@needs_redis
def test_token_manager_records_planted_in_redis_are_not_unpickled(redis_url, tmp_path):
    """Reflex's Redis token manager keeps pickled socket records and relays pickled deltas."""
    import redis.asyncio
    from reflex.utils.token_manager import LostAndFoundRecord, RedisTokenManager

    marker = tmp_path / "pwned"
    emitted = []

    async def emit_update(update, token):
        emitted.append(token)

    async def publish_when_heard(client, channel, message):
        # PUBLISH answers how many subscribers got the message: send it once the listener's
        # own pattern is in place (PUBSUB NUMPAT also counts the token manager's other tasks).
        for _ in range(200):  # generous: a loaded machine
            if await client.publish(channel, message) >= 1:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the listener did not subscribe")

    async def scenario():
        client = redis.asyncio.Redis.from_url(redis_url)
        owner, other = RedisTokenManager(client), RedisTokenManager(client)
        try:
            # A planted socket record is refused; a record the app wrote is read by another worker.
            await client.set(owner._get_redis_key("planted"), exploit_blob(marker))
            assert not await other.is_token_connected("planted")
            await owner.link_token_to_sid("real", "sid-1")
            assert (await client.get(owner._get_redis_key("real"))).startswith(state_mac.TOKEN_MANAGER.magic)
            assert await other._get_token_owner("real", refresh=True) == owner.instance_id
            # A planted delta on the instance's channel is refused before unpickling (the
            # listener stops; Reflex's ensure_task restarts it); one the app sent arrives.
            channel = f"channel:{owner._get_lost_and_found_key(owner.instance_id)}"
            listener = asyncio.create_task(owner._subscribe_lost_and_found_updates(emit_update))
            await publish_when_heard(client, channel, exploit_blob(marker))
            await asyncio.wait([listener], timeout=10)
            assert listener.done() and isinstance(listener.exception(), state_mac.BlobRejected)
            listener = asyncio.create_task(owner._subscribe_lost_and_found_updates(emit_update))
            record = LostAndFoundRecord(token="real", update=None)
            await publish_when_heard(client, channel, state_mac._AuthenticatedPickle.dumps(record))
            for _ in range(100):
                if emitted:
                    break
                await asyncio.sleep(0.1)
            listener.cancel()
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert not marker.exists()
    assert emitted == ["real"]


def test_hkdf_matches_rfc_5869_test_case_3():
    okm = state_mac.hkdf_sha256(bytes([0x0B] * 22), b"", 42)
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_the_key_is_derived_never_the_secret_itself():
    payload = b"state"
    blob = state_mac.STATE.seal(payload)
    import hashlib
    import hmac

    raw_tag = hmac.new(settings.secret_key.encode(), payload, hashlib.sha256).digest()
    assert raw_tag not in blob and state_mac.STATE.open(blob) == payload
    with pytest.raises(state_mac.BlobRejected):
        state_mac.TOKEN_MANAGER.open(blob)  # one key per use


def test_rejections_are_logged_at_most_once_a_minute(caplog, monkeypatch):
    monkeypatch.setattr(state_mac, "_last_logged", -1e9)
    with caplog.at_level("WARNING", logger=state_mac.__name__):
        for _ in range(500):
            with pytest.raises(state_mac.BlobRejected):
                state_mac.STATE.open(b"not ours")
    lines = [record for record in caplog.records if record.name == state_mac.__name__]
    assert len(lines) == 1 and "without a valid MAC" in lines[0].getMessage()
