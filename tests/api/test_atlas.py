"""Atlases: every unit of a layer computed in the background, one ordinary job a unit, at low priority."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import numpy as np
import pytest
from websockets.sync.client import connect

from .requests import MODEL, request

LAYER = "logits"  # the smallest layer of the model: 10 units


def atlas_body(steps: int = 2, layer: str = LAYER, **settings: Any) -> dict[str, Any]:
    return {"model": MODEL, "layer": layer, "settings": {"steps": steps, **settings}}


def wait_atlas(server, aid: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = server.http.get(f"/api/atlas/{aid}").json()
        if state["status"] == "done":
            return state
        time.sleep(0.05)
    raise TimeoutError(f"atlas {aid} did not finish in {timeout} s")


def atlas_live(server, body: dict[str, Any] | str) -> list[dict[str, Any]]:
    messages = []
    with connect(f"ws://127.0.0.1:{server.port}/api/atlas/live", open_timeout=30) as ws:
        ws.send(body if isinstance(body, str) else json.dumps(body))
        for raw in ws:
            messages.append(json.loads(raw))
    return messages


def test_atlas_caches_every_unit_as_a_single_request_would(make_server, tmp_path):
    server = make_server(tmp_path / "atlas")
    created = server.http.post("/api/atlas", json=atlas_body())
    assert created.status_code == 202
    state = created.json()
    assert (state["model"], state["layer"], state["units_total"]) == (MODEL, LAYER, 10)
    assert [u["unit"] for u in state["units"]] == list(range(10))
    assert server.http.post("/api/atlas", json=atlas_body()).json()["id"] == state["id"]  # joins, one at a time

    done = wait_atlas(server, state["id"])
    assert all(u["status"] == "done" for u in done["units"])
    started = server.http.get("/api/health").json()["jobs_started"]
    assert started == 10
    for unit in done["units"]:
        single = server.http.post("/api/visualizations", json=request(layer=LAYER, unit=unit["unit"], steps=2)).json()
        assert single["id"] == unit["id"] and single["status"] == "done"  # from the cache
        result = server.http.get(f"/api/visualizations/{unit['id']}").json()["result"]
        assert unit["media"] == result["media"]
    assert server.http.get("/api/health").json()["jobs_started"] == started  # nothing computed again
    assert server.http.post("/api/atlas", json=atlas_body()).json()["status"] == "done"

    # the same unit computed alone, on another server, is the same id and about the same result (the
    # atlas's units were optimised in batches: the batched kernels round differently, docs/benchmarks.md)
    elsewhere = make_server(tmp_path / "elsewhere")
    unit = done["units"][7]
    alone = elsewhere.wait_done(
        elsewhere.http.post("/api/visualizations", json=request(layer=LAYER, unit=7, steps=2)).json()["id"]
    )
    assert alone["id"] == unit["id"]
    ours = np.load(io.BytesIO(server.http.get(f"/api/visualizations/{unit['id']}/inputs.npz").content))
    theirs = np.load(io.BytesIO(elsewhere.http.get(alone["result"]["inputs"]).content))
    assert ours.files == theirs.files
    for name in ours.files:
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-3)


def test_live_atlas_streams_each_unit_as_it_finishes(server):
    messages = atlas_live(server, atlas_body(steps=3, layer="appearance.conv1"))
    types = [m["type"] for m in messages]
    assert types[0] == "atlas" and types[-1] == "done" and set(types[1:-1]) == {"unit"}
    first, last = messages[0], messages[-1]
    assert len(first["units"]) == first["units_total"] == 16
    finished = [m for m in messages if m["type"] == "unit" and m["status"] == "done"]
    assert sorted(m["unit"] for m in finished) == list(range(16))
    assert all(set(m["media"]) == {"appearance.gif", "appearance.mp4", "appearance.png", "appearance-alpha.png"} for m in finished)
    assert all(u["status"] == "done" for u in last["units"])
    again = atlas_live(server, atlas_body(steps=3, layer="appearance.conv1"))  # all cached now
    assert [m["type"] for m in again] == ["atlas", "done"]


def test_interactive_request_does_not_wait_for_the_atlas(make_server):
    server = make_server()
    atlas = server.http.post("/api/atlas", json=atlas_body(steps=64, layer="fusion.fc6")).json()
    assert atlas["units_total"] == 64
    while server.http.get(f"/api/atlas/{atlas['id']}").json()["units"][0]["status"] != "done":
        time.sleep(0.05)
    vid = server.http.post("/api/visualizations", json=request(unit=1, steps=4)).json()["id"]
    assert server.wait_done(vid)["status"] == "done"
    state = server.http.get(f"/api/atlas/{atlas['id']}").json()
    finished = sum(u["status"] == "done" for u in state["units"])
    # the first batch of units finished together; the next one (64 steps) yielded to the request
    assert state["status"] == "running" and finished <= server.services.jobs.background_slots


def test_bad_atlas_requests_are_4xx(server):
    assert server.http.post("/api/atlas", json={**atlas_body(), "model": "nope"}).status_code == 404
    assert server.http.post("/api/atlas", json=atlas_body(layer="nope")).status_code == 404
    assert server.http.post("/api/atlas", json=atlas_body(steps=0)).status_code == 422
    assert server.http.post("/api/atlas", json={**atlas_body(), "unit": 3}).status_code == 422
    assert server.http.get("/api/atlas/0123456789abcdef0123").status_code == 404
    assert server.http.get("/api/atlas/not-an-id").status_code == 422
    error = atlas_live(server, "{not json")
    assert [m["type"] for m in error] == ["error"]


def test_one_client_cannot_queue_many_atlases(make_server):
    server = make_server()
    for seed in range(4):  # slow ones: they stay in progress
        assert server.http.post("/api/atlas", json=atlas_body(steps=1024, seed=seed)).status_code == 202
    refused = server.http.post("/api/atlas", json=atlas_body(steps=1024, seed=4))
    assert refused.status_code == 429 and refused.headers["retry-after"]
    assert server.http.post("/api/atlas", json=atlas_body(steps=1024, seed=0)).status_code == 202  # joining is fine


def session(name: str) -> dict[str, str]:
    return {"X-Stlens-Session": f"atlas-test-{name:0>12}"}


def test_unit_messages_say_how_long_the_atlas_has_left(server):
    messages = atlas_live(server, atlas_body(steps=3, layer="appearance.conv2"))
    units = [m for m in messages if m["type"] == "unit"]
    assert units and all("eta_s" in m for m in units)
    assert any(m["eta_s"] is not None and m["eta_s"] > 0 for m in units[:-1])  # while units are left
    assert units[-1]["eta_s"] is None and messages[-1]["eta_s"] is None  # none once it is over


def test_the_atlas_tells_its_starter_it_is_theirs_and_nobody_else(make_server):
    server = make_server()
    started = server.http.post("/api/atlas", json=atlas_body(steps=1024), headers=session("starter")).json()
    assert started["yours"] is True
    aid = started["id"]
    assert server.http.get(f"/api/atlas/{aid}", headers=session("starter")).json()["yours"] is True
    assert server.http.get(f"/api/atlas/{aid}", headers=session("student")).json()["yours"] is False
    joined = server.http.post("/api/atlas", json=atlas_body(steps=1024), headers=session("student")).json()
    assert joined["id"] == aid and joined["yours"] is False
    assert server.http.delete(f"/api/atlas/{aid}", headers=session("student")).status_code == 403
    cancelled = server.http.delete(f"/api/atlas/{aid}", headers=session("starter"))
    assert cancelled.status_code == 200 and cancelled.json()["yours"] is True


def test_a_stored_result_costs_nothing_in_the_estimate(server):
    body = {"model": MODEL, "layer": LAYER, "settings": {"steps": 2, "seed": 31}}
    before = server.http.post("/api/estimates", json={**body, "unit": 4}).json()
    assert before["stored"] == 0 and before["seconds"] > 0
    vid = server.http.post("/api/visualizations", json=request(layer=LAYER, unit=4, steps=2, seed=31)).json()["id"]
    assert server.wait_done(vid)["status"] == "done"
    after = server.http.post("/api/estimates", json={**body, "unit": 4}).json()
    assert (after["stored"], after["runs"], after["seconds"], after["heavy"]) == (1, 1, 0.0, False)
    atlas = server.http.post("/api/estimates", json={**body, "atlas": True}).json()
    assert (atlas["stored"], atlas["runs"]) == (1, 10)
    # the nine left to compute, at one pace (seconds are rounded to 0.1)
    assert atlas["seconds"] == pytest.approx(9 * 2 * atlas["seconds_per_step"], abs=0.05)
    state = server.http.post("/api/atlas", json=body).json()
    wait_atlas(server, state["id"])
    whole = server.http.post("/api/estimates", json={**body, "atlas": True}).json()
    assert (whole["stored"], whole["seconds"], whole["heavy"]) == (10, 0.0, False)
    for wrong in ({**body, "unit": 4, "atlas": True}, {**body, "unit": 4, "runs": 3}, {**body, "unit": 99}):
        assert server.http.post("/api/estimates", json=wrong).status_code in (404, 422), wrong


def test_submitted_units_that_wait_are_queued_with_their_place_not_computing(make_server):
    server = make_server(max_running=1)
    busy = server.http.post("/api/visualizations", json=request(unit=1, steps=1024)).json()["id"]
    while server.http.get(f"/api/visualizations/{busy}").json()["status"] != "running":
        time.sleep(0.05)
    messages = []
    with connect(f"ws://127.0.0.1:{server.port}/api/atlas/live", open_timeout=30) as ws:
        ws.send(json.dumps(atlas_body(steps=2)))
        deadline = time.monotonic() + 60
        while not any(m.get("position") is not None for m in messages):  # a submitted unit heard its place
            assert time.monotonic() < deadline
            messages.append(json.loads(ws.recv(timeout=60)))
        assert server.http.get(f"/api/visualizations/{busy}").json()["status"] == "running"  # it still holds the slot
        assert all(m["status"] == "queued" for m in messages if m["type"] == "unit")  # none said computing
        assert server.http.delete(f"/api/visualizations/{busy}").status_code == 200  # the slot frees
        for raw in ws:
            messages.append(json.loads(raw))
    units = [m for m in messages if m["type"] == "unit"]
    first = next(m for m in units if m["position"] is not None)
    assert first["position"] >= 0 and first["eta_s"] is not None
    for number in range(10):  # each: queued, then computing once it takes steps, then done
        seen = [m["status"] for m in units if m["unit"] == number]
        assert seen[-1] == "done"
        if "running" in seen:
            assert all(status != "queued" for status in seen[seen.index("running") :])
