"""Reading a request body under a size limit in pure ASGI, then handing it on: shared by the model server's and
the gateway's body limits, so both refuse a huge upload as soon as it passes the limit instead of buffering it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Receive = Callable[[], Awaitable[dict]]


def declared_length(scope: dict) -> int | None:
    """The request's ``Content-Length``, when it declares one."""
    for name, value in scope.get("headers") or []:
        if name.lower() == b"content-length" and value.isdigit():
            return int(value)
    return None


async def read_limited(receive: Receive, max_bytes: int) -> tuple[bytes | None, int]:
    """(body, bytes received). The body is None when it passed ``max_bytes`` (reading stopped there: received >
    max_bytes) or when the client went away (received <= max_bytes)."""
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, received
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > max_bytes:
            return None, received
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), received


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then whatever the connection says next (a disconnect)."""
    replayed = False

    async def again() -> dict:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
