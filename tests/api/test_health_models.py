"""GET /api/health, /api/models and /api/models/{model} as the CONTRACT describes them."""

from __future__ import annotations

from stlens.models.spec import STREAMS


def test_health_reports_cache_and_device(server):
    response = server.http.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["cache"] == "ok"
    assert body["device"] == "cpu"


def test_models_list_the_builtin_two_stream_nets(server):
    models = server.http.get("/api/models").json()
    ids = [m["id"] for m in models]
    assert {"synth-conv-fusion", "synth-late-fusion"} <= set(ids)
    for model in models:
        assert {"id", "title", "streams", "num_classes"} <= set(model)
        assert set(model["streams"]) <= set(STREAMS)
        assert model["num_classes"] > 0


def test_model_detail_lists_inputs_labels_and_layers_in_forward_order(server):
    detail = server.http.get("/api/models/synth-conv-fusion").json()
    assert detail["id"] == "synth-conv-fusion"
    assert detail["inputs"]["appearance"] == {"channels": 3, "frames": 8, "height": 64, "width": 64}
    assert detail["inputs"]["motion"] == {"channels": 2, "frames": 8, "height": 64, "width": 64}
    assert len(detail["labels"]) == detail["num_classes"]
    layers = {layer["id"]: layer for layer in detail["layers"]}
    assert layers["appearance.conv1"]["stream"] == "appearance"
    assert layers["motion.conv3"]["stream"] == "motion"
    assert layers["fusion.conv"]["stream"] == "fusion"
    assert layers["appearance.conv1"]["units"] == layers["appearance.conv1"]["shape"][0] == 16
    order = [layer["id"] for layer in detail["layers"]]
    assert order.index("appearance.conv1") < order.index("appearance.conv2") < order.index("fusion.conv")
    assert detail["layers"][-1] == {
        "id": "logits",
        "stream": "fusion",
        "units": detail["num_classes"],
        "shape": [detail["num_classes"]],
        "defaults": {"param": "pca", "freedom": 1.0},  # what an unset param and freedom become there
        "start_defaults": {"param": "spectrum", "freedom": 1.0},
    }
    assert layers["fusion.conv"]["defaults"] == layers["fusion.conv"]["start_defaults"] == {
        "param": "spectrum", "freedom": 2.0
    }


def test_late_fusion_model_has_per_stream_heads(server):
    layers = {
        layer["id"]: layer["stream"] for layer in server.http.get("/api/models/synth-late-fusion").json()["layers"]
    }
    assert layers["appearance_head.fc"] == "appearance"
    assert layers["motion_head.fc"] == "motion"
    assert layers["logits"] == "fusion"


def test_unknown_model_is_404_with_detail(server):
    response = server.http.get("/api/models/no-such-model")
    assert response.status_code == 404
    assert "no-such-model" in response.json()["detail"]


def test_openapi_documents_the_api(server):
    paths = server.http.get("/openapi.json").json()["paths"]
    for path in (
        "/api/health",
        "/api/models",
        "/api/models/{model}",
        "/api/visualizations",
        "/api/visualizations/{vid}",
        "/api/visualizations/{vid}/inputs.npz",
        "/api/visualizations/{vid}/media/{name}",
    ):
        assert path in paths
    assert server.http.get("/docs").status_code == 200


def test_models_say_whether_their_weights_are_random_and_which_flow_they_were_trained_on(server):
    models = {m["id"]: m for m in server.http.get("/api/models").json()}
    assert not models["synth-conv-fusion"]["random_weights"] and models["synth-conv-fusion"]["flow"] == "dis"
    random = [m for m in models.values() if "(random weights)" in m["title"]]
    assert random and all(m["random_weights"] for m in random)  # the zoo without its checkpoints
    assert all(not m["random_weights"] for m in models.values() if "(random weights)" not in m["title"])
    assert models["i3d-kinetics400"]["flow"] == "tvl1"


def test_a_built_in_models_detail_carries_its_training_card(server):
    card = server.http.get("/api/models/synth-conv-fusion").json()["card"]
    assert card["training"]["command"].startswith("stlens train") and 0 < card["accuracy"]["test"]["all"] <= 1
    assert server.http.get(f"/api/models/{'vgg16-twostream-small'}").json()["card"] is None
