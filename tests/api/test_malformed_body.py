"""A body the server cannot decode (malformed chunked encoding) answers 400 ``request.malformed``.

Granian hands the app ``http.disconnect`` in the middle of such a body while the client
still waits (infra/asgi.py, BodyWatch); the app used to answer nothing
and Granian sent "500 Internal server error". Here the app is driven in-process with the
messages Granian sends; tests/e2e/test_unknown_hosts.py sends real malformed chunks to the
app as scripts/run.sh starts it.
"""

from __future__ import annotations

import asyncio
import json

from sqlmodel import select

from referral_app.referral_app import api
from referral_app.models import CodeSend, User


def drive(path: str, messages: list[dict], content_type: bytes = b"application/json") -> tuple[int, dict, bytes]:
    """Run one HTTP request through the app with ``messages`` as what the server's receive gives."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", content_type), (b"transfer-encoding", b"chunked")],
        "client": ("198.51.100.7", 50000), "server": ("testserver", 80),
    }
    queue = list(messages)
    sent: list[dict] = []

    async def receive():
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)  # what a server does once the body is over: wait for a disconnect

    async def send(message):
        sent.append(message)

    asyncio.run(asyncio.wait_for(api(scope, receive, send), 30))
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


CUT = [{"type": "http.request", "body": b'{"phone_number": "+7912', "more_body": True}, {"type": "http.disconnect"}]


def test_a_body_the_server_could_not_decode_is_a_400_not_a_500(db):
    status, headers, body = drive("/api/v1/auth/request_code/", CUT)
    assert status == 400, body
    assert json.loads(body)["code"] == "request.malformed"
    assert headers["connection"] == "close" and headers["x-content-type-options"] == "nosniff"
    # The same at once, before any chunk came (Granian's answer to a chunk size that is not hex).
    status, _, body = drive("/api/v1/auth/request_code/", [{"type": "http.disconnect"}])
    assert status == 400 and json.loads(body)["code"] == "request.malformed"
    assert db.exec(select(CodeSend)).all() == [] and db.exec(select(User)).all() == []


def test_an_admin_form_whose_body_breaks_is_a_400_too(db):
    status, headers, body = drive("/admin/login", CUT, b"application/x-www-form-urlencoded")
    assert status == 400 and headers["content-type"].startswith("text/plain")
    assert b"malformed" in body


def test_a_whole_body_is_still_answered_by_the_app(db):
    status, _, body = drive("/api/v1/auth/request_code/", [
        {"type": "http.request", "body": b'{"phone_number": "+79123456789"}', "more_body": False},
    ])
    assert status == 200, body
