"""POST / GET /api/visualizations, inputs.npz, media and the /v/{id} share page."""

from __future__ import annotations

import io
import json

import av
import numpy as np
import pytest
import redis
from PIL import Image

from stlens.engine.settings import VisualizationSettings
from stlens.media.outputs import MEDIA_TYPES

from .requests import request

MAGIC = {"image/png": b"\x89PNG", "image/gif": b"GIF8"}


@pytest.fixture(scope="module")
def fusion_done(server):
    """A finished fusion-layer visualisation (both streams)."""
    created = server.http.post("/api/visualizations", json=request(unit=5))
    assert created.status_code == 202
    return server.wait_done(created.json()["id"])


def test_post_answers_id_status_and_share_url(server):
    response = server.http.post("/api/visualizations", json=request(unit=1))
    assert response.status_code == 202
    body = response.json()
    assert len(body["id"]) == 20 and all(c in "0123456789abcdef" for c in body["id"])
    assert body["status"] in ("queued", "running", "done")
    assert body["share_url"].startswith(f"{server.base_url}/v/{body['id']}?model=")  # it carries the request
    assert server.wait_done(body["id"])["status"] == "done"


def test_same_request_gives_same_id_defaults_included(server):
    first = server.http.post("/api/visualizations", json=request(unit=2)).json()["id"]
    filled = request(unit=2)
    filled["settings"] = VisualizationSettings(steps=6).model_dump(mode="json")
    assert server.http.post("/api/visualizations", json=filled).json()["id"] == first
    assert server.http.post("/api/visualizations", json=request(unit=2, seed=1)).json()["id"] != first
    assert server.http.post("/api/visualizations", json=request(unit=4)).json()["id"] != first
    other_model = request(unit=2, model="synth-late-fusion", layer="appearance.conv1")
    assert server.http.post("/api/visualizations", json=other_model).json()["id"] != first


def test_get_done_has_request_with_defaults_and_result(server, fusion_done):
    assert fusion_done["status"] == "done"
    # every default filled in, the layer's freedom too: what ran
    filled_in = VisualizationSettings(steps=6).for_layer("fusion.conv")
    assert fusion_done["request"]["settings"] == filled_in.model_dump(mode="json")
    assert fusion_done["request"]["unit"] == 5
    result = fusion_done["result"]
    assert result["steps"] == 6
    assert isinstance(result["objective"], float)
    assert set(result["media"]) == set(MEDIA_TYPES)
    assert result["streams"] == ["appearance", "motion"]
    assert result["seconds"] > 0  # how long the optimisation took here


def test_pace_of_a_layer_that_ran_here_estimates_the_next_run(server, fusion_done):
    pace = server.http.get(f"/api/models/{fusion_done['request']['model']}/pace").json()
    assert pace["model"] == fusion_done["request"]["model"]
    seconds_per_step = pace["seconds_per_step"][fusion_done["request"]["layer"]]
    assert 0 < seconds_per_step <= fusion_done["result"]["seconds"]
    assert server.http.get("/api/models/no-such-model/pace").status_code == 404


def test_every_medium_is_served_with_its_type(server, fusion_done):
    for name, url in fusion_done["result"]["media"].items():
        response = server.http.get(url)
        assert response.status_code == 200, name
        content_type = response.headers["content-type"]
        assert content_type == MEDIA_TYPES[name]
        if content_type in MAGIC:
            assert response.content.startswith(MAGIC[content_type])
            Image.open(io.BytesIO(response.content)).verify()
    gif = Image.open(io.BytesIO(server.http.get(fusion_done["result"]["media"]["motion.gif"]).content))
    assert gif.n_frames == 8
    with av.open(io.BytesIO(server.http.get(fusion_done["result"]["media"]["appearance.mp4"]).content)) as video:
        assert len(list(video.decode(video=0))) == 8


def test_inputs_npz_holds_both_streams_in_display_space(server, fusion_done):
    response = server.http.get(f"/api/visualizations/{fusion_done['id']}/inputs.npz")
    assert response.status_code == 200
    arrays = np.load(io.BytesIO(response.content))
    assert set(arrays.files) == {"appearance", "motion", "appearance_alpha", "motion_alpha"}
    rgb, flow = arrays["appearance"], arrays["motion"]
    for stream in ("appearance", "motion"):  # where the unit's evidence is: (T, H, W) in [0, 1]
        alpha = arrays[f"{stream}_alpha"]
        assert alpha.shape == (8, 64, 64) and 0 <= alpha.min() and alpha.max() == pytest.approx(1.0)
    assert rgb.shape == (8, 64, 64, 3) and rgb.dtype == np.float32
    assert flow.shape == (8, 64, 64, 2) and flow.dtype == np.float32
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0
    assert np.isfinite(flow).all() and np.abs(flow).max() > 0


def test_single_stream_layer_gets_only_its_stream(server):
    vid = server.http.post("/api/visualizations", json=request(layer="motion.conv2", unit=0)).json()["id"]
    done = server.wait_done(vid)
    assert done["result"]["streams"] == ["motion"]
    assert all(not name.startswith("appearance") for name in done["result"]["media"])
    arrays = np.load(io.BytesIO(server.http.get(done["result"]["inputs"]).content))
    assert sorted(arrays.files) == ["motion", "motion_alpha"]
    assert server.http.get(f"/api/visualizations/{vid}/media/appearance.gif").status_code == 404


def test_done_id_is_served_from_the_cache(server, fusion_done):
    started = server.http.get("/api/health").json()["jobs_started"]
    again = server.http.post("/api/visualizations", json=request(unit=5))
    assert again.json() == {
        "id": fusion_done["id"],
        "status": "done",
        "share_url": server.base_url + fusion_done["share_path"],
    }
    assert server.http.get("/api/health").json()["jobs_started"] == started


def test_share_page_and_index(server, fusion_done):
    page = server.http.get(f"/v/{fusion_done['id']}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.text == server.http.get("/").text
    unknown = server.http.get("/v/0123456789abcdef0123")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/html")
    assert server.http.get("/v/not-an-id").status_code == 404


def test_evicted_result_is_recomputed_from_its_stored_request(make_server):
    server = make_server(recent_results=1)  # memory keeps only the newest result
    vid = server.http.post("/api/visualizations", json=request(unit=7)).json()["id"]
    first = server.wait_done(vid)
    server.wait_done(server.http.post("/api/visualizations", json=request(unit=8)).json()["id"])
    with redis.Redis(unix_socket_path=str(server.services.embedded_redis.socket_path)) as client:
        assert client.delete(f"stlens:v1:result:{vid}") == 1  # as an LRU eviction would
    assert server.http.get(f"/api/visualizations/{vid}/inputs.npz").status_code == 404
    again = server.wait_done(vid)
    assert again["status"] == "done"
    assert again["result"]["objective"] == pytest.approx(first["result"]["objective"])
    assert server.http.get("/api/health").json()["jobs_started"] == 3


def test_a_stored_request_that_no_longer_validates_is_reported_not_crashed(server):
    vid = "0123456789abcdef0000"
    stale = {"model": "synth-conv-fusion", "layer": "fusion.conv", "unit": 1, "settings": {"retired_setting": 1}}
    with redis.Redis(unix_socket_path=str(server.services.embedded_redis.socket_path)) as client:
        client.set(f"stlens:v1:request:{vid}", json.dumps(stale))
    body = server.http.get(f"/api/visualizations/{vid}").json()
    assert body["status"] == "failed" and "not valid" in body["detail"]
