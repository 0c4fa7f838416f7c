"""Page state that someone else wrote is never unpickled: a keyed MAC over every state blob.

Reflex keeps each tab's page state as Python pickles: in Redis (``REFLEX_REDIS_URL``) or,
without Redis, in files under ``REFLEX_STATES_WORKDIR``; its Redis token manager keeps
pickled socket records there too and relays pickled deltas between instances over Redis
pub/sub. Unpickling runs whatever code the bytes name, so whoever can write to that Redis
(or that directory) could run code in the app (issue 18). This module makes every such blob
the app writes carry a tag and checks the tag before ``pickle`` sees a byte:

    blob = MAGIC (4 bytes) + HMAC-SHA256(key, pickle) (32 bytes) + pickle

HMAC is RFC 2104; the key is derived from ``SECRET_KEY`` by HKDF-SHA256 (RFC 5869) with a
label per use (page state, token-manager records), never the secret itself. The tag is
compared in constant time (:func:`hmac.compare_digest`). A blob without a valid tag (not
ours, altered, written under another ``SECRET_KEY``, or from before this module) is never
unpickled: a page state is then treated as Reflex treats one whose schema changed (a fresh
state for that tab), a token-manager record as a Redis error (Reflex logs it and carries on).
Rejections are counted (:func:`rejected_blobs`, and ``referral_state_blobs_rejected_total``
on ``/metrics``) and logged at most once a minute, with the count since the last line.

:func:`install` (``referral_app/referral_app.py`` calls it at import, before the app exists,
so before any state is read) has ``infra/framework/reflex_state.py`` put :data:`STATE` around
every page-state pickle Reflex writes and reads, and :class:`_AuthenticatedPickle` in place of
the ``pickle`` of Reflex's Redis token manager; that module refuses to start the app when
Reflex no longer has these in the expected shape, and ``tests/framework/test_reflex_state.py``
also fails then, and when Reflex unpickles anywhere else.

What a MAC cannot stop: someone who can write to Redis can still delete state, or put back
an older blob the app itself wrote (the page's session check, ``state/base.py``, re-checks
whose data a tab holds on every hydrate); Redis authentication and a network policy are the
guard against that writer (README "Security").
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import pickle
import threading
import time
import types
from typing import Any

from referral_app.infra.framework.reflex_state import seal_state_pickles
from referral_app.infra.metrics import count_rejected_state_blob
from referral_app.settings import settings

logger = logging.getLogger(__name__)

_TAG_BYTES = hashlib.sha256().digest_size
# Rejections are logged at most this often (seconds); each line gives the count since the last.
LOG_INTERVAL_SECONDS = 60.0


def hkdf_sha256(secret: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869 §2) with an empty salt: ``length`` bytes (at most 8160) of key
    for ``info`` from the input keying material ``secret``."""
    prk = hmac.new(b"\0" * _TAG_BYTES, secret, hashlib.sha256).digest()  # §2.2: no salt = zeros
    okm, block = b"", b""
    for counter in range(1, -(-length // _TAG_BYTES) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


@functools.lru_cache(maxsize=4)
def _key(secret: str, label: bytes) -> bytes:
    return hkdf_sha256(secret.encode(), b"referral_app/" + label)


class BlobRejected(Exception):
    """A blob read back had no valid tag; it was not unpickled."""


class Sealer:
    """Tags and checks blobs of one ``kind``: ``seal(payload)`` → blob, ``open(blob)`` → payload.

    ``magic`` (4 bytes) marks the kind and the format's version; ``label`` selects the key.
    The key follows ``settings.secret_key`` at each call (cached per value).
    """

    def __init__(self, kind: str, magic: bytes, label: bytes) -> None:
        assert len(magic) == 4
        self.kind, self.magic, self.label = kind, magic, label

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(_key(settings.secret_key, self.label), payload, hashlib.sha256).digest()

    def seal(self, payload: bytes) -> bytes:
        """``payload`` with this kind's magic and its tag in front."""
        return self.magic + self._tag(payload) + payload

    def open(self, blob: bytes | bytearray | memoryview | None) -> bytes:
        """The payload of a blob :meth:`seal` made; :class:`BlobRejected` (counted) for anything else."""
        head = len(self.magic) + _TAG_BYTES
        data = bytes(blob) if isinstance(blob, (bytes, bytearray, memoryview)) else b""
        if len(data) >= head and data[: len(self.magic)] == self.magic:
            payload = data[head:]
            if hmac.compare_digest(data[len(self.magic) : head], self._tag(payload)):
                return payload
        _count_rejection(self.kind)
        raise BlobRejected(f"a stored {self.kind} blob without a valid MAC was not unpickled")


STATE = Sealer("state", b"RXS1", b"reflex-state/v1")
TOKEN_MANAGER = Sealer("token_manager", b"RXT1", b"reflex-token-manager/v1")

_lock = threading.Lock()
_rejected_total = 0
_rejected_unlogged = 0
_last_logged = -LOG_INTERVAL_SECONDS


def rejected_blobs() -> int:
    """How many blobs this process has refused to unpickle since it started."""
    return _rejected_total


def _count_rejection(kind: str) -> None:
    global _rejected_total, _rejected_unlogged, _last_logged
    count_rejected_state_blob(kind)
    with _lock:
        _rejected_total += 1
        _rejected_unlogged += 1
        now = time.monotonic()
        if now - _last_logged < LOG_INTERVAL_SECONDS:
            return
        count, total, _rejected_unlogged, _last_logged = _rejected_unlogged, _rejected_total, 0, now
    logger.warning(
        "%d stored blob(s) without a valid MAC were not unpickled (latest: %s; %d since start): "
        "something other than this app writes to its Redis or state directory, or SECRET_KEY changed",
        count,
        kind,
        total,
    )


class _AuthenticatedPickle(types.SimpleNamespace):
    """What ``reflex.utils.token_manager`` sees as ``pickle``: ``dumps`` seals, ``loads`` checks
    first. Nothing else: a new use of ``pickle`` there fails loudly instead of unpickling."""

    @staticmethod
    def dumps(obj: Any, *args: Any, **kwargs: Any) -> bytes:
        return TOKEN_MANAGER.seal(pickle.dumps(obj, *args, **kwargs))

    @staticmethod
    def loads(data: bytes, *args: Any, **kwargs: Any) -> Any:
        return pickle.loads(TOKEN_MANAGER.open(data), *args, **kwargs)


def install() -> None:
    """Seal every state blob Reflex writes and check every one it reads (see the module's
    docstring); idempotent. :class:`~referral_app.infra.framework.FrameworkChanged` (a
    ``RuntimeError``) if Reflex's internals are not as expected."""
    seal_state_pickles(STATE.seal, STATE.open, BlobRejected, _AuthenticatedPickle())
