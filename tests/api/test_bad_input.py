"""Bad input across the endpoints: a 4xx with a clear detail (or an ``error`` message), never a 500."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.frames import CloseCode
from websockets.sync.client import connect

from stlens.engine.settings import MAX_STEPS

from .requests import request
from .test_live import run_live


def _with(**changes):
    body = request()
    for key, value in changes.items():
        if key in body:
            body[key] = value
        else:
            body["settings"][key] = value
    return body


BAD_BODIES = [
    pytest.param(_with(model="no-such-model"), 404, "no-such-model", id="unknown-model"),
    pytest.param(_with(layer="fusion.nope"), 404, "fusion.nope", id="unknown-layer"),
    pytest.param(_with(unit=64), 422, "out of range", id="unit-past-the-layer"),
    pytest.param(_with(unit=-1), 422, "unit", id="negative-unit"),
    pytest.param(_with(unit="three"), 422, "unit", id="unit-not-int"),
    pytest.param(_with(steps=MAX_STEPS + 1), 422, "steps", id="too-many-steps"),
    pytest.param(_with(steps=0), 422, "steps", id="zero-steps"),
    pytest.param(_with(lr=-1), 422, "lr", id="negative-lr"),
    pytest.param(_with(objective="everything"), 422, "objective", id="unknown-objective"),
    pytest.param(_with(param="wavelet"), 422, "param", id="unknown-param"),
    pytest.param(_with(weights={"tv_time": {"appearance": -1}}), 422, "appearance", id="negative-weight"),
    pytest.param(_with(frames=1000), 422, "frames", id="unknown-setting"),
    pytest.param({"model": "synth-conv-fusion", "layer": "fusion.conv"}, 422, "unit", id="missing-unit"),
    pytest.param({**request(), "extra": 1}, 422, "extra", id="unknown-field"),
    pytest.param([1, 2, 3], 422, "", id="not-an-object"),
    pytest.param(_with(layer="x" * 300), 422, "layer", id="huge-layer-name"),
]


@pytest.mark.parametrize(("body", "status", "mentions"), BAD_BODIES)
def test_bad_post_bodies_are_4xx_with_detail(server, body, status, mentions):
    response = server.http.post("/api/visualizations", json=body)
    assert response.status_code == status
    assert mentions in json.dumps(response.json()["detail"])


@pytest.mark.parametrize(("body", "status", "mentions"), BAD_BODIES)
def test_bad_live_requests_get_an_error_message(server, body, status, mentions):
    messages = run_live(server, body)
    assert [m["type"] for m in messages] == ["error"]
    assert mentions in json.dumps(messages[0]["detail"])


@pytest.mark.parametrize("text", ["{not json", "", "null", '"a string"', "[]"])
def test_malformed_live_messages_get_an_error_and_the_server_stays_up(server, text):
    messages = run_live(server, text)
    assert [m["type"] for m in messages] == ["error"]
    assert messages[0]["detail"]
    assert server.http.get("/api/health").status_code == 200


def test_binary_live_message_is_read_as_text(server):
    with connect(server.ws_url, open_timeout=30) as ws:
        ws.send(b"\xff\xfe not json")
        assert json.loads(ws.recv(timeout=30))["type"] == "error"
    with connect(server.ws_url, open_timeout=30) as ws:
        ws.send(json.dumps(request(unit=19)).encode())
        assert json.loads(ws.recv(timeout=30))["type"] == "accepted"


def test_oversized_bodies_are_refused(server):
    limit = server.settings.max_body_bytes
    padded = {**request(), "padding": "x" * limit}
    assert server.http.post("/api/visualizations", json=padded).status_code == 413
    with pytest.raises(ConnectionClosedError) as closed:
        run_live(server, json.dumps(padded))
    assert closed.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG
    assert server.http.get("/api/health").status_code == 200


def test_non_json_post_body_is_422(server):
    response = server.http.post("/api/visualizations", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/visualizations/0123456789abcdef0123", 404),
        ("/api/visualizations/not-an-id", 422),
        ("/api/visualizations/0123456789ABCDEF0123", 422),
        ("/api/visualizations/0123456789abcdef0123/inputs.npz", 404),
        ("/api/visualizations/0123456789abcdef0123/media/appearance.gif", 404),
        ("/api/visualizations/0123456789abcdef0123/media/secret.txt", 404),
        ("/api/visualizations/0123456789abcdef0123/media/..%2F..%2Fpyproject.toml", 404),
        ("/api/visualizations/0123456789abcdef0123/media/%2e%2e", 404),
        ("/static/..%2F..%2Fpyproject.toml", 404),
        ("/static/../pyproject.toml", 404),
        ("/v/..%2Fpyproject.toml", 404),
        ("/api/models/..%2F..%2Fetc%2Fpasswd", 404),
    ],
)
def test_unknown_ids_names_and_paths_are_4xx(server, path, status):
    response = server.http.get(path)
    assert response.status_code == status
    assert "[project]" not in response.text  # never a file outside the served folders


def test_unknown_medium_of_a_done_visualisation_is_404(server):
    vid = server.http.post("/api/visualizations", json=request(unit=13)).json()["id"]
    assert server.wait_done(vid)["status"] == "done"
    response = server.http.get(f"/api/visualizations/{vid}/media/inputs.npz")
    assert response.status_code == 404
    assert "appearance.gif" in response.json()["detail"]
