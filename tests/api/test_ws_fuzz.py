"""The two WebSockets fuzzed with Hypothesis: whatever a client sends as its first message, the server
answers with standard JSON (``accepted``/``atlas``, or ``error`` with a ``detail``) and closes
normally, or closes with 1009 for a message over the size limit; never an abnormal close.

Messages are request-shaped bodies with one place poisoned (as in ``test_fuzz.py``), any JSON
value, any text, and any bytes. A request that is accepted is not followed: the test leaves at
once, so its job is cancelled and the fuzzing costs no optimisation time.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from .requests import MODEL
from .test_attacks import strict_json
from .test_fuzz import ODD_VALUES, leaves, lenient_json, replaced

WS_FUZZ_EXAMPLES = int(os.environ.get("STLENS_WS_FUZZ_EXAMPLES", "60"))
SOCKETS = {"/api/visualizations/live": "accepted", "/api/atlas/live": "atlas"}
BODIES = {
    "/api/visualizations/live": {"model": MODEL, "layer": "logits", "unit": 1, "settings": {"steps": 1}},
    "/api/atlas/live": {"model": MODEL, "layer": "logits", "settings": {"steps": 1}},
}
SETTINGS_KEYS = ["steps", "seed", "lr", "objective", "param", "direction", "diversity", "weights", "transforms"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@st.composite
def poisoned_request(draw, path: str) -> bytes:
    body = BODIES[path]
    body = {**body, "settings": {**body["settings"], draw(st.sampled_from(SETTINGS_KEYS)): draw(json_values)}}
    where = draw(st.sampled_from(leaves(body)))
    return lenient_json(replaced(body, where, draw(st.sampled_from([*ODD_VALUES, draw(json_values)]))))


def messages(path: str):
    return st.one_of(
        poisoned_request(path),
        json_values.map(lenient_json),
        st.text(max_size=200),
        st.binary(max_size=200),
    )


def answers_of(server, path: str, message: bytes | str) -> tuple[list, int | None]:
    """Send ``message`` (bytes as a binary frame); the answers until the first one that is not an error
    (then the client leaves), and the close code the server sent, if it closed."""
    received = []
    with connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=30, max_size=None) as ws:
        ws.send(message)
        try:
            for raw in ws:
                received.append(answer_of(raw))
                if received[-1]["type"] != "error":
                    return received, None
        except ConnectionClosed:
            pass
        return received, ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None


def answer_of(raw: str | bytes) -> dict:
    """One answer, read strictly: a text frame of standard JSON, an object of a known type."""
    assert isinstance(raw, str), "the server answers in text frames"
    answer = strict_json(raw)
    assert isinstance(answer, dict) and answer.get("type") in ("accepted", "atlas", "error", "done")
    if answer["type"] == "error":
        assert answer["detail"]
    return answer


@pytest.mark.parametrize("path", sorted(SOCKETS))
@settings(max_examples=WS_FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_sockets_answer_anything_with_json_and_close_normally(server, path, data):
    message = data.draw(messages(path))
    received, close_code = answers_of(server, path, message)
    if close_code == 1009:  # over the size limit: refused before it is read
        assert len(message) > server.settings.max_body_bytes
        return
    assert received, f"no answer to {message[:100]!r}"
    if received[-1]["type"] == "error":
        assert close_code == 1000, f"close {close_code} after an error for {message[:100]!r}"
    else:
        assert received[-1]["type"] in (SOCKETS[path], "done")


def test_the_fuzzer_reaches_a_request_the_server_accepts(server):
    """The poisoned requests start from a valid body: unpoisoned, the socket accepts it."""
    for path, first in SOCKETS.items():
        received, _ = answers_of(server, path, json.dumps(BODIES[path]))
        assert received[-1]["type"] in (first, "done")
