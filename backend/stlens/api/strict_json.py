"""Standard JSON only, at the edge: what Python's ``json`` accepts beyond the standard is refused.

Python reads ``NaN``, ``Infinity`` and ``1e400`` (as infinity) as numbers and ``"\\ud800"`` as a
string that cannot be encoded again, and recurses once per level of nesting. Let in, they made 500s:
a 422 whose body (echoing the input) could not be encoded, a Redis call that could not encode a
name, a ``RecursionError``. So every JSON body (HTTP) and first message (sockets) is parsed here
first, and refused with a clear reason if it holds a non-finite number, a lone surrogate, or more
than ``MAX_DEPTH`` levels of arrays and objects (the API's bodies have four).
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_DEPTH = 32


class NotStandardJSON(ValueError):
    """The text is not standard JSON (or nests too deep); ``where`` is the path to the offending value."""

    def __init__(self, reason: str, where: tuple[str | int, ...] = ()):
        self.reason = reason
        self.where = where
        super().__init__(f"{'.'.join(map(str, where))}: {reason}" if where else reason)


class _Unstandard:
    """What Python's parser read where standard JSON has no number (NaN, Infinity, 1e400)."""

    def __init__(self, text: str):
        self.text = text


def _number(text: str) -> float | _Unstandard:
    value = float(text)
    return value if math.isfinite(value) else _Unstandard(text)


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


SURROGATE = "holds a lone UTF-16 surrogate (such as \\ud800), which is not a character; send valid Unicode"


def parse_strictly(text: str | bytes) -> Any:
    """``text`` as standard JSON; NotStandardJSON for anything else, or for nesting beyond ``MAX_DEPTH``."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise NotStandardJSON("the body is not UTF-8 text") from None
    try:
        value = json.loads(text, parse_constant=_Unstandard, parse_float=_number)
    except RecursionError:
        raise NotStandardJSON(f"the JSON is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as error:  # not JSON, or an integer of thousands of digits
        raise NotStandardJSON(f"not valid JSON: {error}") from None
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:  # iterative: a deep value must not recurse here either
        item, where = stack.pop()
        if isinstance(item, dict | list):
            if len(where) >= MAX_DEPTH:
                raise NotStandardJSON(f"the JSON is nested too deeply (at most {MAX_DEPTH} levels)")
            if isinstance(item, dict):
                for key, child in item.items():
                    if not _is_text(key):
                        raise NotStandardJSON(f"a key {SURROGATE}", where)
                    stack.append((child, (*where, key)))
            else:
                stack.extend((child, (*where, index)) for index, child in enumerate(item))
        elif isinstance(item, _Unstandard):
            raise NotStandardJSON(f"{item.text} is not a number JSON allows; send a finite number", where)
        elif isinstance(item, str) and not _is_text(item):
            raise NotStandardJSON(f"the text {SURROGATE}", where)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > 2**63:
            raise NotStandardJSON("an integer out of range; send one of at most 64 bits", where)
    return value


def validation_error(error: NotStandardJSON) -> list[dict[str, Any]]:
    """A 422's ``detail``, shaped as FastAPI's for a body it cannot read."""
    return [{"type": "json_invalid", "loc": ["body", *error.where], "msg": error.reason}]


class StrictJSONBodies:
    """ASGI middleware: a JSON request body (or one without a content type) that is not standard
    JSON gets 422 before the app reads it. It reads the whole body, which the body-size limit
    outside it has bounded, then hands it on unchanged."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"").lower()
        if content_type and b"json" not in content_type:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if body.strip():
            try:
                parse_strictly(body)
            except NotStandardJSON as error:
                answer = json.dumps({"detail": validation_error(error)}).encode()
                await send({"type": "http.response.start", "status": 422,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": answer})
                return
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)
