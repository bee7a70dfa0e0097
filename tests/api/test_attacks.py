"""The attacks of issue 16 that a client sends: each one is answered with a clear 4xx (or an ``error``
message on a socket), a body that any JSON decoder reads, and the server serves on.

Non-finite numbers, lone surrogates, loose integer types, deep nesting and chunked bodies; the
attacks on sockets, hosts and origins are in ``test_connections.py`` and ``test_web_security.py``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.sync.client import connect

from .requests import MODEL, request

PREFIX = f'{{"model":"{MODEL}","layer":"fusion.conv","unit":1,"settings":'
NON_FINITE_BODIES = [
    pytest.param(PREFIX + '{"lr":NaN}}', "lr", id="lr-nan"),
    pytest.param(PREFIX + '{"lr":Infinity}}', "lr", id="lr-infinity"),
    pytest.param(PREFIX + '{"lr":-Infinity}}', "lr", id="lr-minus-infinity"),
    pytest.param(PREFIX + '{"lr":1e400}}', "lr", id="lr-1e400"),
    pytest.param(PREFIX + '{"bogus":NaN}}', "bogus", id="unknown-key-nan"),
    pytest.param(PREFIX + '{"weights":{"tv_time":{"motion":-1e999}}}}', "motion", id="weight-minus-1e999"),
    pytest.param(f'{{"model":"{MODEL}","layer":"\\ud800","unit":1}}', "layer", id="layer-lone-surrogate"),
    pytest.param(f'{{"model":"\\udfff{MODEL}","layer":"fusion.conv","unit":1}}', "model", id="model-lone-surrogate"),
    pytest.param(PREFIX + '{"objective":"\\ud83d"}}', "objective", id="objective-half-emoji"),
    pytest.param(PREFIX + '{"\\ud800":1}}', "settings", id="key-lone-surrogate"),
]
LOOSE_INTEGERS = [
    pytest.param({"unit": True}, "unit", id="unit-true"),
    pytest.param({"unit": "3"}, "unit", id="unit-string"),
    pytest.param({"unit": 3.0}, "unit", id="unit-float"),
    pytest.param({"settings": {"steps": "6"}}, "steps", id="steps-string"),
    pytest.param({"settings": {"steps": True}}, "steps", id="steps-true"),
    pytest.param({"settings": {"seed": 1.5}}, "seed", id="seed-float"),
    pytest.param({"settings": {"transforms": {"time_shift": False}}}, "time_shift", id="time-shift-false"),
]


def strict_json(text: str) -> Any:
    """``text`` parsed as standard JSON: NaN, Infinity and lone surrogates are refused."""

    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    parsed = json.loads(text, parse_constant=refuse)
    json.dumps(parsed, allow_nan=False, ensure_ascii=False).encode("utf-8")  # no lone surrogate, even escaped
    return parsed


def post_raw(server, path: str, body: str | bytes) -> Any:
    return server.http.post(path, content=body, headers={"content-type": "application/json"})


def live_raw(server, path: str, text: str) -> list[dict[str, Any]]:
    """Send ``text`` on the socket at ``path``; every answer (parsed strictly) until the server closes."""
    with connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=30, max_size=None) as ws:
        ws.send(text)
        answers = [strict_json(raw) for raw in ws]
        assert ws.close_code == 1000
    return answers


@pytest.mark.parametrize(("body", "mentions"), NON_FINITE_BODIES)
def test_non_finite_numbers_and_lone_surrogates_are_422_with_a_standard_json_body(server, body, mentions):
    response = post_raw(server, "/api/visualizations", body)
    assert response.status_code == 422, response.text
    assert mentions in json.dumps(strict_json(response.text)["detail"])


@pytest.mark.parametrize(("body", "mentions"), NON_FINITE_BODIES)
def test_non_finite_numbers_and_lone_surrogates_on_the_socket_get_an_error(server, body, mentions):
    (answer,) = live_raw(server, "/api/visualizations/live", body)
    assert answer["type"] == "error" and mentions in json.dumps(answer["detail"])


@pytest.mark.parametrize("value", ["1e999", "NaN", "-Infinity"])
def test_a_non_finite_atlas_weight_is_422_over_http_and_an_error_on_its_socket(server, value):
    body = f'{{"model":"{MODEL}","layer":"logits","settings":{{"steps":2,"weights":{{"norm":{value}}}}}}}'
    response = post_raw(server, "/api/atlas", body)
    assert response.status_code == 422, response.text
    assert "norm" in json.dumps(strict_json(response.text)["detail"])
    (answer,) = live_raw(server, "/api/atlas/live", body)
    assert answer["type"] == "error" and "norm" in json.dumps(answer["detail"])


@pytest.mark.parametrize(("change", "mentions"), LOOSE_INTEGERS)
def test_integers_are_strict(server, change, mentions):
    body = request(unit=1)
    for key, value in change.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) else value
    response = server.http.post("/api/visualizations", json=body)
    assert response.status_code == 422, response.text
    assert mentions in json.dumps(response.json()["detail"])


@pytest.mark.parametrize("path", ["/api/visualizations/live", "/api/atlas/live"])
@pytest.mark.parametrize(("opening", "closing", "levels"), [("[", "]", 30_000), ('{"a":', "}", 10_000)])
def test_deep_nesting_on_a_socket_is_refused_with_an_error_and_a_normal_close(server, path, opening, closing, levels):
    """As deep as a message under the 64 KiB limit can nest."""
    (answer,) = live_raw(server, path, opening * levels + closing * levels)
    assert answer["type"] == "error" and "nested" in json.dumps(answer["detail"])
    assert server.http.get("/api/health").status_code == 200


@pytest.mark.parametrize("path", ["/api/visualizations", "/api/atlas"])
def test_deep_nesting_over_http_is_422(server, path):
    response = post_raw(server, path, "[" * 30_000 + "]" * 30_000)
    assert response.status_code == 422, response.text[:200]
    assert "nested" in json.dumps(strict_json(response.text)["detail"])


def test_a_chunked_body_over_the_limit_is_413(server):
    def chunks():
        for _ in range(200):
            yield b" " * 1024

    response = server.http.post("/api/visualizations", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert "too large" in strict_json(response.text)["detail"]



@pytest.mark.parametrize(
    ("settings", "said"),
    [({"steps": 0}, "must be at least 1"), ({"lr": 0}, "must be more than 0"), ({"steps": "6"}, "must be a whole number"),
     ({"objective": "most"}, "must be 'channel' or 'neuron'")],
)
def test_a_field_error_says_what_the_field_must_be_over_http_and_on_the_socket(server, settings, said):
    body = {**request(unit=1), "settings": settings}
    response = server.http.post("/api/visualizations", json=body)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["msg"].startswith(said) and error["loc"][-1] == next(iter(settings)), error
    (answer,) = live_raw(server, "/api/visualizations/live", json.dumps(body))
    assert answer["type"] == "error" and answer["detail"][0]["msg"].startswith(said), answer
