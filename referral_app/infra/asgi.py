"""Small pieces that pure ASGI middleware share: reading a request's body once, and handing
it on to the app as if it had not been read."""

from __future__ import annotations

from starlette.types import Message, Receive


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
