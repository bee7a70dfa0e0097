from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import pytest
from stlens.analysis import video

from .conftest import VIDEO_KINDS, canvas_gif, encode, moving_square
from .test_video import zero_frame_avi

MODEL = "synth-conv-fusion"


def test_samples_are_listed_and_explained(server) -> None:
    samples = server.http.get("/api/explain/samples").json()
    assert "synth-box" in samples
    r = server.http.post("/api/explain", data={"model": MODEL, "sample": "synth-box", "units": "4"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["top"]) == {"fused", "appearance", "motion"}
    assert body["target"]["index"] == body["top"]["fused"][0]["index"]
    assert body["layer"] == "fusion.fc6"
    assert len(body["units"]) == 4
    for stream in ("appearance", "motion"):
        assert body["clip"][stream].startswith("data:image/jpeg;base64,")
        assert body["gradcam"][stream].startswith("data:image/jpeg;base64,")


@pytest.mark.parametrize("kind", ["mp4", "gif"])
def test_upload_with_a_chosen_class_and_layer(server, kind: str) -> None:
    data = VIDEO_KINDS[kind](moving_square())
    r = server.http.post(
        "/api/explain",
        data={"model": MODEL, "target": "2", "layer": "motion.conv3"},
        files={"file": ("clip.bin", data, "application/octet-stream")},
    )
    assert r.status_code == 200, r.text
    assert r.json()["target"]["index"] == 2
    assert r.json()["layer"] == "motion.conv3"


@pytest.mark.parametrize(
    "fields, files, status, detail",
    [
        ({"model": MODEL}, {"file": ("a.mp4", b"not a video" * 50, "video/mp4")}, 400, "could not be decoded"),
        ({"model": MODEL}, {"file": ("a.mp4", b"", "video/mp4")}, 400, "empty"),
        ({"model": MODEL}, None, 422, "exactly one"),
        ({"model": MODEL, "sample": "synth-nothing"}, None, 404, "unknown sample"),
        ({"model": "no-such-model", "sample": "synth-box"}, None, 404, "unknown model"),
        ({"model": MODEL, "sample": "synth-box", "layer": "nope"}, None, 422, "no layer"),
        ({"model": MODEL, "sample": "synth-box", "target": "999"}, None, 422, "target"),
        ({"model": MODEL, "sample": "synth-box", "stride": "100"}, None, 422, "stride"),
    ],
)
def test_bad_requests_are_4xx_with_a_message(server, fields, files, status: int, detail: str) -> None:
    r = server.http.post("/api/explain", data=fields, files=files)
    assert r.status_code == status, r.text
    assert detail in str(r.json()["detail"])


def test_truncated_upload_is_400(server) -> None:
    data = VIDEO_KINDS["mp4"](moving_square())
    r = server.http.post(
        "/api/explain", data={"model": MODEL}, files={"file": ("a.mp4", data[: len(data) // 3], "video/mp4")}
    )
    assert r.status_code == 400
    assert r.json()["detail"]


@pytest.mark.parametrize(
    "make, detail",
    [
        (lambda: zero_frame_avi(), "no frames"),
        (lambda: encode(np.zeros((2, 16, 4112, 3), np.uint8), "avi", "mjpeg"), "4112x16"),
    ],
)
def test_zero_frame_and_huge_videos_are_400(server, make, detail: str) -> None:
    r = server.http.post("/api/explain", data={"model": MODEL}, files={"file": ("v.avi", make(), "video/avi")})
    assert r.status_code == 400
    assert detail in r.json()["detail"]


def test_oversized_upload_is_413(server) -> None:
    r = server.http.post(
        "/api/explain",
        data={"model": MODEL},
        files={"file": ("big.mp4", b"\0" * (video.MAX_BYTES + 128 * 1024), "video/mp4")},
    )
    assert r.status_code == 413
    assert "too large" in r.json()["detail"]


def test_other_routes_keep_the_small_body_limit(server) -> None:
    r = server.http.post("/api/visualizations", content=b"{" + b" " * (server.settings.max_body_bytes + 10) + b"}")
    assert r.status_code == 413


def test_a_huge_canvas_gif_and_a_4k_h264_file_are_refused_before_decoding(server, big_h264_file) -> None:
    for name, data, detail in [
        ("canvas.gif", canvas_gif(), "1000 frames of 4096x2160"),
        ("big.mp4", big_h264_file, "80 frames of 4096x2160"),
    ]:
        r = server.http.post("/api/explain", data={"model": MODEL}, files={"file": (name, data, "video/mp4")})
        assert r.status_code == 400 and detail in r.json()["detail"], r.text
    r = server.http.post("/api/explain", data={"model": MODEL, "sample": "synth-box"})
    assert r.status_code == 200  # and the server serves on


def test_waiting_uploads_are_capped_in_bytes_and_the_rest_told_to_retry(server, monkeypatch) -> None:
    """Twelve 31 MiB uploads at once while decoding is held: two fit the waiting bytes (64 MiB), ten
    get 503 with Retry-After at once, and none of those ten is read into the server's memory."""
    pool = video.DecodePool()
    monkeypatch.setattr(server.services, "decoders", pool)
    gate = threading.Event()
    real_decode = video.decode_video
    monkeypatch.setattr(video, "decode_video", lambda data: gate.wait(60) and real_decode(data))
    upload = b"\0" * (31 * 1024 * 1024)
    answers: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(base_url=server.base_url, timeout=120) as client:
            answers.append(client.post("/api/explain", data={"model": MODEL}, files={"file": ("u.mp4", upload)}))

    senders = [threading.Thread(target=send) for _ in range(12)]
    for sender in senders:
        sender.start()
    try:
        for _ in range(1200):  # at most 120 s
            if len(answers) >= 10:
                break
            time.sleep(0.1)
        assert sorted(r.status_code for r in answers) == [503] * 10
        assert all(r.headers["Retry-After"] and "try again" in r.json()["detail"] for r in answers)
        assert pool.admitted == (2, 2 * len(upload))
        # an explanation of a sample does not wait behind the uploads being decoded (issue 16: 75 s)
        sample = server.http.post("/api/explain", data={"model": MODEL, "sample": "synth-box"})
        assert sample.status_code == 200 and pool.admitted[0] == 2
    finally:
        gate.set()
        for sender in senders:
            sender.join(timeout=120)
    assert sorted(r.status_code for r in answers) == [400] * 2 + [503] * 10
    assert pool.admitted == (0, 0)


def test_a_model_trained_on_tvl1_gets_tvl1_flow_and_its_progress_is_streamed(server) -> None:
    """The zoo's I3D declares TV-L1 (its checkpoints' flow): a sample is explained with it, the fields'
    progress comes as JSON lines before the explanation, and the clip's flow is kept for the next time."""
    import json

    form = {"model": "i3d-kinetics400", "sample": "synth-run", "units": "2"}
    with server.http.stream("POST", "/api/explain", data=form, headers={"Accept": "application/x-ndjson"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    progress, final = lines[:-1], lines[-1]
    assert final["type"] == "done" and final["explanation"]["model"] == "i3d-kinetics400"
    assert [(m["done"], m["total"]) for m in progress] == [(i, 8) for i in range(1, 9)]  # 8 frames of flow
    assert all(m["type"] == "progress" and m["stage"] == "flow" for m in progress)
    assert final["explanation"]["familiarity"]["measured"] is False  # no Kinetics clips here to compare with
    with server.http.stream("POST", "/api/explain", data=form, headers={"Accept": "application/x-ndjson"}) as r:
        again = [json.loads(line) for line in r.iter_lines() if line]
    assert [m["type"] for m in again] == ["done"]  # the clip's TV-L1 flow was kept: nothing to estimate


def test_the_flow_estimator_is_the_models_own(server, monkeypatch) -> None:
    from stlens.analysis import clip

    used = []
    real = clip.estimate_flow

    def recorded(frames, method, progress=None):
        used.append(method)
        return real(frames, method, progress)

    monkeypatch.setattr(clip, "estimate_flow", recorded)
    for model in ("synth-late-fusion", "i3d-kinetics400"):  # a stride no other test uses: no kept flow
        form = {"model": model, "sample": "synth-jump", "stride": "1.75"}
        assert server.http.post("/api/explain", data=form).status_code == 200
    assert used == ["dis", "tvl1"]
