"""Visualisations that start from a real clip, and the faithfulness stored with every result."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from .requests import request

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def moving_square_mp4() -> bytes:
    """12 frames of a yellow square moving right over a dark ground, as H.264."""
    frames = np.full((12, 48, 64, 3), 40, np.uint8)
    for t in range(12):
        frames[t, 16:32, 4 + 2 * t : 20 + 2 * t] = (230, 200, 40)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return buffer.getvalue()


def started(server, start, **overrides):
    body = {**request(**overrides), "start": start}
    return server.http.post("/api/visualizations", json=body)


def test_a_start_is_part_of_the_request_and_of_its_id(server):
    plain = server.http.post("/api/visualizations", json=request()).json()["id"]
    created = started(server, {"example": 3})
    assert created.status_code == 202
    body = created.json()
    assert body["id"] != plain and "start" in body["share_url"]
    done = server.wait_done(body["id"])
    assert done["status"] == "done" and done["request"]["start"] == {"example": 3}
    assert started(server, {"example": 3}).json()["id"] == body["id"]  # the same start, the same id


def test_accentuating_a_dataset_example_stays_near_it(server):
    from stlens.analysis.synthset import example_clips

    clips = example_clips()
    done = server.wait_done(started(server, {"example": 11}, steps=8, weights={"start": 10.0}).json()["id"])
    arrays = np.load(io.BytesIO(server.http.get(done["result"]["inputs"]).content))
    distance = np.abs(arrays["appearance"] - clips.frames[11] / 255).mean()
    assert distance < 0.1


def test_a_sample_and_an_upload_can_be_started_from(server, moving_square_mp4):
    done = server.wait_done(started(server, {"sample": "synth-walk"}).json()["id"])
    assert done["status"] == "done"
    explained = server.http.post(
        "/api/explain", data={"model": "synth-conv-fusion"}, files={"file": ("a.mp4", moving_square_mp4, "video/mp4")}
    ).json()
    clip = explained["clip_id"]
    assert len(clip) == 20
    done = server.wait_done(started(server, {"upload": clip}).json()["id"])
    assert done["status"] == "done" and done["request"]["start"] == {"upload": clip}


@pytest.mark.parametrize(
    "start, status, words",
    [
        ({"example": 9999}, 404, "dataset examples"),
        ({"example": 99999}, 404, "dataset examples (0.."),  # how many there are, not the field's bound
        ({"sample": "nope"}, 404, "unknown sample"),
        ({"upload": "0" * 20}, 404, "no uploaded clip"),
        ({"upload": "../etc/passwd"}, 422, "an upload is the clip id a POST /api/explain answer gave"),
        ({"example": 1, "sample": "synth-walk"}, 422, "Extra inputs"),
        ({"example": "1"}, 422, "example"),
        ({"video": 1}, 422, "a start is"),  # one error that says what a start is, not one for each kind
    ],
)
def test_a_bad_start_is_refused_clearly(server, start, status, words):
    response = started(server, start)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert words in str(detail)
    assert isinstance(detail, str) or len(detail) == 1  # the kind given is the only one checked


def test_a_start_for_another_models_inputs_is_refused(server):
    response = started(server, {"example": 1}, model="tv-r3d_18", layer="logits", unit=0)
    assert response.status_code in (404, 422)  # no such model here, or no dataset examples for it


def test_every_result_carries_its_faithfulness(server):
    done = server.wait_done(server.http.post("/api/visualizations", json=request(layer="logits", unit=0)).json()["id"])
    faithfulness = done["result"]["faithfulness"]
    assert faithfulness["reach"]["clips"] == 100 and faithfulness["reach"]["best_clip_objective"] > 0
    assert {j["judge"] for j in faithfulness["judges"]} >= {"synth-late-fusion", "synth-conv-fusion-seed1"}
    assert faithfulness["path"]["of"] == 8
    assert set(faithfulness["natural"]["clip"]) == {"rgb_slope", "saturation", "speed_median", "speed_p90"}
    assert any("independent models" in line for line in faithfulness["summary"])


def test_spectrum_is_the_default_parameterisation_where_a_model_has_spectra(server):
    done = server.wait_done(server.http.post("/api/visualizations", json=request()).json()["id"])
    assert done["request"]["settings"]["param"] == "spectrum"
    assert done["request"]["settings"]["freedom"] == 2.0  # a hidden unit's: the record says what ran


def test_pca_is_the_default_at_the_class_logits_and_a_start_keeps_spectrum(server):
    logits = server.wait_done(server.http.post("/api/visualizations", json=request(layer="logits", unit=1)).json()["id"])
    assert logits["request"]["settings"]["param"] == "pca" and logits["request"]["settings"]["freedom"] == 1.0
    explicit = server.http.post("/api/visualizations", json=request(layer="logits", unit=1, param="pca")).json()
    assert explicit["id"] == logits["id"]  # asking for what the default filled in is the same visualisation
    accentuated = server.wait_done(started(server, {"example": 1}, layer="logits", unit=1).json()["id"])
    assert accentuated["request"]["settings"]["param"] == "spectrum"


def test_pca_from_a_start_clip_is_refused_clearly(server):
    response = started(server, {"example": 1}, param="pca")
    assert response.status_code == 422, response.text
    assert "cannot start from a clip" in str(response.json()["detail"])
