"""A classroom on one server: a waiting client hears its place, leaving the queue leaves it, a layer's
concurrent requests batch, a watched atlas stops when nobody watches, every layer has an estimate."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
from websockets.sync.client import connect

from api.requests import MODEL, live_clients, request
from api.test_live import run_live
from stlens import atlas as atlas_module
from stlens.engine.settings import MAX_STEPS


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def pending_jobs(server) -> int:
    return server.http.get("/api/health").json()["jobs"]


def test_a_waiting_client_hears_its_place_and_leaving_takes_it_out_of_the_queue(make_server):
    server = make_server(max_running=1, max_batch=1)
    with connect(server.ws_url, open_timeout=30) as first:
        first.send(json.dumps(request(unit=1, steps=MAX_STEPS)))
        while json.loads(first.recv())["type"] != "progress":
            pass
        with connect(server.ws_url, open_timeout=30) as second:
            second.send(json.dumps(request(unit=2, steps=MAX_STEPS)))
            assert json.loads(second.recv())["type"] == "accepted"
            queued = json.loads(second.recv(timeout=5))
            assert queued["type"] == "queued" and queued["position"] == 0 and queued["eta_s"] > 0
            assert pending_jobs(server) == 2
        wait_for(lambda: pending_jobs(server) == 1)  # the waiting one left the queue with its client
    wait_for(lambda: pending_jobs(server) == 0)


def test_a_bad_priority_is_refused(server):
    assert server.http.post("/api/visualizations?priority=soon", json=request()).status_code == 422
    with connect(f"{server.ws_url}?priority=soon", open_timeout=30) as ws:
        ws.send(json.dumps(request()))
        answer = json.loads(ws.recv())
    assert answer["type"] == "error" and "priority" in answer["detail"]


def test_concurrent_requests_of_a_layer_each_get_their_own_result(server):
    bodies = [request(unit=unit, steps=8, seed=7) for unit in (20, 21, 22, 23)]
    results = live_clients([server.ws_url], bodies)
    ids = [messages[0]["id"] for messages in results]
    assert len(set(ids)) == 4
    for body, messages in zip(bodies, results):
        done = messages[-1]
        assert done["status"] == "done" and done["request"]["unit"] == body["unit"]
        assert any(m["type"] == "progress" for m in messages)


def test_a_request_alone_gives_the_same_result_bit_for_bit_on_another_server(make_server, tmp_path):
    arrays = []
    for name in ("here", "there"):
        server = make_server(tmp_path / name)
        done = run_live(server, request(unit=12, steps=6, seed=3))[-1]
        arrays.append(np.load(io.BytesIO(server.http.get(done["result"]["inputs"]).content)))
    here, there = arrays
    assert here.files == there.files and all(np.array_equal(here[k], there[k]) for k in here.files)


def watch_atlas_briefly(server, **extra) -> str:
    """Start an atlas over the live socket, take its first message, leave; its id."""
    with connect(f"ws://127.0.0.1:{server.port}/api/atlas/live", open_timeout=30) as ws:
        ws.send(json.dumps({"model": MODEL, "layer": "fusion.fc6", "settings": {"steps": 256}, **extra}))
        state = json.loads(ws.recv())
    assert state["type"] == "atlas" and state["eta_s"] > 0
    return state["id"]


def test_a_live_atlas_stops_when_nobody_watches_unless_it_runs_on(make_server, monkeypatch):
    monkeypatch.setattr(atlas_module, "UNWATCHED_GRACE_S", 0.5)
    server = make_server()
    stopped_id = watch_atlas_briefly(server)
    wait_for(lambda: server.http.get(f"/api/atlas/{stopped_id}").json()["cancelled"])
    state = server.http.get(f"/api/atlas/{stopped_id}").json()
    assert state["status"] == "done" and all("nobody watched" in u["detail"] for u in state["units"])
    wait_for(lambda: pending_jobs(server) == 0)

    kept_id = watch_atlas_briefly(server, settings={"steps": 256, "seed": 1}, run_on=True)
    time.sleep(1.5)
    kept = server.http.get(f"/api/atlas/{kept_id}").json()
    assert kept["status"] == "running" and kept["run_on"] and not kept["cancelled"]
    assert server.http.delete(f"/api/atlas/{kept_id}").status_code == 200  # this client started it


def test_every_layer_has_an_estimate_before_its_first_run(server):
    pace = server.http.get(f"/api/models/{MODEL}/pace").json()
    model = server.http.get(f"/api/models/{MODEL}").json()
    assert set(pace["layers"]) == {layer["id"] for layer in model["layers"]}
    assert all(layer["seconds_per_step"] > 0 for layer in pace["layers"].values())
    body = {"model": MODEL, "layer": "fusion.conv", "settings": {"steps": 40}}
    one = server.http.post("/api/estimates", json=body).json()
    atlas = server.http.post("/api/estimates", json={**body, "atlas": True}).json()
    assert one["runs"] == 1 and atlas["runs"] == 64
    assert atlas["seconds"] == pytest.approx(64 * 40 * one["seconds_per_step"], abs=0.1)
    assert atlas["heavy"] and atlas["heavy_s"] == 30
    assert server.http.post("/api/estimates", json={**body, "layer": "nope"}).status_code == 404
    assert server.http.post("/api/estimates", json={**body, "runs": 0}).status_code == 422
