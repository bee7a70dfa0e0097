"""What the live sockets share: one JSON request in, then messages out until done or the client leaves.

Both live sockets (visualisations and atlases) take the client's one JSON text message, answer
a bad one, or one the server has no room for, with an ``error`` message (the socket and the
server stay up), then stream messages until the work is done, and stop quietly when the client
goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from ..jobs.core import Busy
from ..request import InvalidRequest
from .errors import plain_error_list
from .strict_json import NotStandardJSON, parse_strictly

FIRST_MESSAGE_TIMEOUT_S = 30.0
T = TypeVar("T")
Started = TypeVar("Started")


def error_detail(error: Exception) -> Any:
    """The ``detail`` of an error message, shaped like the HTTP API's 4xx bodies."""
    if isinstance(error, ValidationError):
        return plain_error_list(error)
    if isinstance(error, InvalidRequest | Busy):
        return error.detail
    return str(error)


async def receive_first_message(ws: WebSocket, max_bytes: int) -> str:
    """The client's one JSON text message (ValueError if it is late, too large, not standard JSON
    or nested too deeply)."""
    try:
        message = await asyncio.wait_for(ws.receive(), FIRST_MESSAGE_TIMEOUT_S)
    except TimeoutError:
        raise ValueError(f"no request within {FIRST_MESSAGE_TIMEOUT_S:.0f} s") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:  # a binary frame: accepted if it is UTF-8 JSON all the same
        text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
    if len(text.encode("utf-8", errors="surrogatepass")) > max_bytes:
        raise ValueError(f"message too large (at most {max_bytes} bytes)")
    try:
        parse_strictly(text)
    except NotStandardJSON as exc:
        raise ValueError(f"the message is not standard JSON: {exc}") from None
    return text


async def until_closed(ws: WebSocket) -> None:
    """Returns when the client goes away (anything it sends meanwhile is ignored)."""
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


class Watch:
    """A client watching its work: :meth:`next` is the next thing to send, unless the client leaves first."""

    def __init__(self, ws: WebSocket):
        self._closed = asyncio.ensure_future(until_closed(ws))

    async def next(self, upcoming: Awaitable[T]) -> T:
        """``upcoming``'s result; WebSocketDisconnect if the client leaves before it comes."""
        item = asyncio.ensure_future(upcoming)
        await asyncio.wait({item, self._closed}, return_when=asyncio.FIRST_COMPLETED)
        if self._closed.done():
            item.cancel()
            raise WebSocketDisconnect(1001)
        return item.result()

    def stop(self) -> None:
        self._closed.cancel()


async def serve_one_request(
    ws: WebSocket,
    max_bytes: int,
    start: Callable[[str], Awaitable[Started]],
    stream: Callable[[Started, Watch], Awaitable[None]],
) -> None:
    """Accept the socket, ``start`` the work its first message asks for, ``stream`` its messages
    while the client watches, then close. A bad request, or no room for it, is an ``error`` message."""
    await ws.accept()
    try:
        try:
            started = await start(await receive_first_message(ws, max_bytes))
        except (ValueError, Busy) as exc:  # ValidationError and InvalidRequest are ValueErrors
            await ws.send_json({"type": "error", "detail": error_detail(exc)})
            await ws.close()
            return
        watch = Watch(ws)
        try:
            await stream(started, watch)
        finally:
            watch.stop()
        await ws.close()
    except WebSocketDisconnect:
        return
