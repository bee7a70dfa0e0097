"""The OpenAPI schema fuzzed with Schemathesis: whatever a client sends, never a server error.

Schemathesis generates valid and invalid requests (both modes, ``\\x00`` in strings). JSON has more
than the JSON Schema can say, so every JSON body is also poisoned with what a strict encoder never
writes but a hostile client does: ``NaN``, ``Infinity``, lone UTF-16 surrogates (``"\\ud800"``),
integers past 64 bits, booleans where numbers go, and nesting thousands deep; they go out with
Python's lenient encoder. The one 5xx that is by design is load shedding: a 503 with
``Retry-After`` when the server already has as much queued work as it accepts (many fuzzed atlases
can reach that). Any other 5xx fails, and so does a body that a strict JSON decoder cannot read.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pytest

from stlens.api import create_app
from stlens.config import ServerSettings

from .test_attacks import strict_json

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install -e .[test])")
from hypothesis import HealthCheck, settings  # noqa: E402  (hypothesis comes with schemathesis)
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("STLENS_FUZZ_EXAMPLES", "30"))  # a case each, per operation
DEEP = 5_000
# the raw JSON text of a poisoned leaf where Python's encoder cannot write it
RAW_TOKEN = "\x00stlens-raw-json\x00"
RAW_TEXTS = {"deep-array": "[" * DEEP + "]" * DEEP, "deep-object": '{"a":' * DEEP + "1" + "}" * DEEP, "1e400": "1e400"}
ODD_VALUES: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    2**64,
    -(2**63) - 1,
    10**40,
    True,
    False,
    None,
    "\ud800",
    "\udfff tail",
    "x\ud83d",  # half an emoji
    "\x00",
    "\u202e\u0000\ufeff",
    "../../../../etc/passwd",
    "%2e%2e%2f",
    "\\",
    "x" * 10_000,
    [],
    {},
    *(RAW_TOKEN + name for name in RAW_TEXTS),
]

# the schema of an app that is never started: the same routes as the live server's
schema = schemathesis.openapi.from_dict(create_app(ServerSettings()).openapi())
schema.config.generation.update(modes=list(GenerationMode), allow_x00=True, codec=None, max_examples=FUZZ_EXAMPLES)


def lenient_json(value: Any) -> bytes:
    """``value`` as a hostile client writes it: NaN and Infinity as bare words, surrogates as ``\\uXXXX``
    escapes, and the raw texts (deep nesting, 1e400) spliced in."""
    text = json.dumps(value, allow_nan=True, ensure_ascii=True)
    for name, raw in RAW_TEXTS.items():
        text = text.replace(json.dumps(RAW_TOKEN + name), raw)
    return text.encode("ascii")


@schemathesis.serializer("application/json")
def serialize_leniently(ctx, value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):  # no body, or raw bytes of Schemathesis's own
        return value
    return lenient_json(value)


def leaves(value: Any, path: tuple = ()) -> list[tuple]:
    """The paths of ``value``'s leaves and containers, ``()`` for the value itself."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += leaves(item, (*path, index))
    return found


def replaced(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = replaced(value[head], tuple(rest), new)
    return copy


@schema.hook("flatmap_body")
def poison_json_bodies(context, body: Any):
    """Every JSON body of the fuzzing phase gets an odd value at one place, or under an extra key of
    one object (Schemathesis's other phases send its bodies as they are)."""
    operation = context.operation
    if operation is None or not any("json" in (b.media_type or "") for b in operation.body):
        return st.just(body)

    @st.composite
    def poisoned(draw):
        odd = draw(st.sampled_from(ODD_VALUES))
        places = leaves(body)
        objects = [p for p in places if isinstance(_at(body, p), dict)]
        if objects and draw(st.booleans()):
            where = draw(st.sampled_from(objects))
            return replaced(body, where, {**_at(body, where), draw(st.sampled_from(["bogus", "\ud800", ""])): odd})
        return replaced(body, draw(st.sampled_from(places)), odd)

    return poisoned()


def _at(value: Any, path: tuple) -> Any:
    for step in path:
        value = value[step]
    return value


def strict_body(response) -> Any:
    """The body read by a strict decoder (no NaN, no lone surrogates): every answer must pass."""
    text = response.content.decode("utf-8")
    return strict_json(text) if "json" in response.headers.get("content-type", "") else text


def not_a_server_error_but_load_shedding(ctx, response, case):
    strict_body(response)
    headers = {name.lower() for name in response.headers}
    if response.status_code == 503 and "retry-after" in headers and "detail" in response.json():
        return None
    return not_a_server_error(ctx, response, case)


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, server):
    case.call_and_validate(base_url=server.base_url, checks=[not_a_server_error_but_load_shedding])


def test_the_lenient_encoder_writes_what_a_hostile_client_sends():
    body = {"a": [math.nan, -math.inf], "b": "\ud800", "c": RAW_TOKEN + "1e400", "d": RAW_TOKEN + "deep-array"}
    text = lenient_json(body).decode()
    assert text.startswith('{"a": [NaN, -Infinity], "b": "\\ud800", "c": 1e400, "d": [[[')
    assert text.count("[") == DEEP + 1
