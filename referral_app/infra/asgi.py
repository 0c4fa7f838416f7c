"""A request's body in pure ASGI: reading it once and handing it on to the app as if it had
not been read (:func:`read_body`, :func:`replay_body`), and watching it arrive
(:class:`BodyWatch`: too slow is a 408, cut by the server a 400)."""

from __future__ import annotations

import asyncio

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_app.i18n import choose_language, translate, use_language
from referral_app.infra.responses import API_PREFIX, SECURITY_HEADERS, error_response
from referral_app.settings import settings


class BodyTooLarge(Exception):
    """The body passed the limit; nothing more is read."""


class ClientGone(Exception):
    """The client disconnected (or, for the app, stopped sending in time) before the body ended."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body of an HTTP request, at most ``limit`` bytes."""
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > limit:
            raise BodyTooLarge()
    return body


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app ``body`` first, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


# --- The body as it arrives: too slow (408), or cut by the server (400) -----------------


_BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding"})


def _may_have_body(scope: Scope) -> bool:
    """False for a ``GET`` or ``HEAD`` whose head announces no body (neither ``Content-Length``
    nor ``Transfer-Encoding``: RFC 9112 §6.3), which the watch below has nothing to do for."""
    if scope["method"] not in ("GET", "HEAD"):
        return True
    for name, _ in scope["headers"]:
        if name.lower() in _BODY_HEADERS:
            return True
    return False


class BodyWatch:
    """One layer that watches a request's body arrive (it wraps the server's ``receive``) and
    whether an answer has started (``send``), for two answers the app cannot give itself:

    * **408, too slow.** Granian has no body timeout: the body must arrive within
      ``HTTP_BODY_TIMEOUT_SECONDS`` of the headers, else the app is told ``http.disconnect``
      (what it would see had the client left) and, if it answered nothing, the client gets
      408 ``request.timeout`` with ``Connection: close``. Waiting for a disconnect after the
      body is not timed.
    * **400, cut by the server.** Granian (2.x) ends a body it cannot decode (a chunk size
      that is not hex, a chunk without its CRLF: RFC 9112 §7.1) by handing the app
      ``http.disconnect``, although the client is still connected and waiting. Every reader
      of the body then stops as for a client that left and answers nothing, and Granian
      would send its own "500 Internal server error". So when the server said
      ``http.disconnect`` before the body's last part and the app ended without answering,
      the client gets 400 ``request.malformed`` (JSON under ``/api``, plain text elsewhere,
      in the language of ``Accept-Language``) with ``Connection: close``. If the client
      really left, the answer goes nowhere. A body that is merely slow gets its 408.

    A ``GET`` or ``HEAD`` without a body passes untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _may_have_body(scope):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.http_body_timeout_seconds
        complete = cut = timed_out = started = False

        async def watched_receive() -> Message:
            nonlocal complete, cut, timed_out
            if complete or cut or timed_out:  # the body is over: waiting for a disconnect is not timed
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
                except TimeoutError:
                    timed_out = True
                    return {"type": "http.disconnect"}  # what the app would see if the client left
            if message["type"] == "http.request":
                complete = complete or not message.get("more_body", False)
            elif message["type"] == "http.disconnect" and not complete:
                cut = True
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, watched_receive, watched_send)
        if started:
            return
        if timed_out:
            await error_response(408, "request.timeout", headers={"Connection": "close"})(scope, receive, send)
        elif cut:
            try:
                await _malformed_response(scope)(scope, receive, send)
            except Exception:  # noqa: BLE001 - the client really left: nobody to tell
                pass


def _malformed_response(scope: Scope):
    headers = {"Connection": "close", "Cache-Control": "no-store"}
    header = next((value for name, value in scope["headers"] if name.lower() == b"accept-language"), b"")
    language = choose_language(None, header.decode("latin-1"))
    if scope["path"].startswith(API_PREFIX):
        with use_language(language):
            response = error_response(400, "request.malformed", headers=headers)
    else:
        response = PlainTextResponse(translate("request.malformed", language), 400, headers=headers)
    for name, value in SECURITY_HEADERS:
        response.raw_headers.append((name, value))
    return response
