from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from stlens.analysis import insights
from stlens.analysis.synthset import render_split
from stlens.models.builtin import builtin_entries
from stlens.synth.actions import BIASED_CLASS, LABELS


@pytest.fixture(scope="module")
def results() -> dict:
    entries = [e for e in builtin_entries() if e.spec.id == "synth-late-fusion"]
    return insights.measure_all(1, entries)


def test_the_four_findings_are_measured(results: dict) -> None:
    m = results["models"]["synth-late-fusion"]
    layers = {l["layer"]: l for l in m["layers"]}
    assert list(layers)[-1] == "logits"
    assert set(layers["logits"]) >= {"conjunction", "cross_stream", "selectivity", "speed_invariance"}
    assert "conjunction" not in layers["motion.conv1"]  # only fusion layers have a cross-stream score
    for l in m["layers"]:
        assert 0.0 <= l["selectivity"] <= 1.0 and 0.0 <= l["speed_invariance"] <= 1.0
        assert len(l["speed_responses"]) == l["units"] and len(l["speed_responses"][0]) == len(insights.SPEEDS)
        assert len(l["unit_selectivity"]) == len(l["preferred"]) == l["units"]
    # appearance units see single frames, which replaying at another speed barely changes
    assert layers["appearance.conv1"]["speed_invariance"] > layers["motion.conv1"]["speed_invariance"]
    assert m["bias"]["class"] == BIASED_CLASS and m["bias"]["unit"] == LABELS.index(BIASED_CLASS)
    assert 0.0 <= m["bias"]["accuracy_test"] <= 1.0
    assert len(m["examples"]["units"]) == layers[m["examples"]["layer"]]["units"]
    text = insights.markdown(results)
    assert "| motion.conv3 | motion |" in text and BIASED_CLASS in text


def test_speed_replay_changes_the_flow_not_the_scene() -> None:
    slow, fast = render_split("test", 1, 0.5), render_split("test", 1, 2.0)
    assert (slow.frames[:, 0].astype(int) - fast.frames[:, 0].astype(int)).std() < 40  # same scenes
    slow_speed = abs(slow.flow.astype(float)).mean()
    assert abs(fast.flow.astype(float)).mean() > 2 * slow_speed


def test_insights_api(server, results: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stlens.api.routes import insights as route

    monkeypatch.setattr(route, "RESULTS_PATH", tmp_path / "absent.json")
    r = server.http.get("/api/insights")
    assert r.status_code == 404 and "stlens.analysis.insights" in r.json()["detail"]
    path = tmp_path / "insights.json"
    path.write_text(json.dumps(results))
    monkeypatch.setattr(route, "RESULTS_PATH", path)
    body = server.http.get("/api/insights").json()
    assert body["models"]["synth-late-fusion"]["stale"] is False
    results["models"]["synth-late-fusion"]["weights_hash"] = "old"
    path.write_text(json.dumps(results))
    assert server.http.get("/api/insights").json()["models"]["synth-late-fusion"]["stale"] is True


def test_pages_are_served(server) -> None:
    for page in ("/explain", "/insights"):
        r = server.http.get(page)
        assert r.status_code == 200 and "<main" in r.text


def test_unit_examples_are_the_units_top_clips(server, conv_fusion) -> None:
    from stlens.analysis.synthset import example_clips

    r = server.http.get(
        "/api/examples", params={"model": "synth-conv-fusion", "layer": "fusion.conv", "unit": 3, "k": 2}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["clips"] == len(example_clips()) and len(body["examples"]) == 2
    first, second = body["examples"]
    assert first["activation"] >= second["activation"]
    assert first["label"] == LABELS[int(example_clips().labels[first["clip"]])]
    assert first["appearance"].startswith("data:image/jpeg;base64,") and first["where"] is not None
    # the activation is the unit's peak on that clip
    clip = example_clips().batch(slice(first["clip"], first["clip"] + 1))
    with torch.no_grad():
        out = conv_fusion.module.fusion.conv(
            torch.cat([conv_fusion.module.appearance(clip["appearance"]), conv_fusion.module.motion(clip["motion"])], 1)
        )
    assert first["activation"] == pytest.approx(float(out[0, 3].max()), rel=1e-4)


@pytest.mark.parametrize(
    "params, status",
    [
        ({"model": "nope", "layer": "logits", "unit": 0}, 404),
        ({"model": "synth-conv-fusion", "layer": "nope", "unit": 0}, 422),
        ({"model": "synth-conv-fusion", "layer": "logits", "unit": 99}, 422),
        ({"model": "synth-conv-fusion", "layer": "logits", "unit": 0, "k": 100}, 422),
    ],
)
def test_unit_examples_bad_requests(server, params: dict, status: int) -> None:
    r = server.http.get("/api/examples", params=params)
    assert r.status_code == status
    assert r.json()["detail"]


def test_only_models_of_the_synthetic_world_have_dataset_examples(server) -> None:
    assert server.http.get("/api/models/synth-late-fusion").json()["dataset_examples"] is True
    assert server.http.get("/api/models/st-resnet-small").json()["dataset_examples"] is False
    r = server.http.get("/api/examples", params={"model": "st-resnet-small", "layer": "logits", "unit": 0})
    assert r.status_code == 422 and "synthetic world" in r.json()["detail"]


def test_mark_peak_boxes_the_cell_on_its_frames() -> None:
    from stlens.analysis.unit_examples import MARK, mark_peak

    frames = np.zeros((8, 64, 64, 3), np.uint8)
    marked = mark_peak(frames, (0.375, 0.5625, 0.1875), (0.25, 0.125, 0.125))  # cell (1, 4, 1) of a 4x8x8 grid
    changed = np.flatnonzero(marked.reshape(8, -1).any(1))
    assert changed.tolist() == [2, 3]
    ys, xs = np.nonzero(marked[2].any(-1))
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (32, 39, 8, 15)
    assert tuple(marked[2, 32, 8]) == MARK
