"""``stlens serve --models FILE.toml``: a model of one's own joins the built-in ones."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
import pytest

from stlens.cli import main

from .test_live import run_live

NET = """
import torch
from torch import nn


class TinyTwoStream(nn.Module):
    def __init__(self, classes: int = 5):
        super().__init__()
        self.appearance = nn.Conv3d(3, 4, 3, padding=1)
        self.motion = nn.Conv3d(2, 4, 3, padding=1)
        self.fusion = nn.Linear(8, classes)

    def forward(self, appearance, motion):
        a = self.appearance(appearance).relu().mean((2, 3, 4))
        m = self.motion(motion).relu().mean((2, 3, 4))
        return self.fusion(torch.cat([a, m], 1))


def build():
    torch.manual_seed(0)
    return TinyTwoStream()
"""

MODEL_FILE = """
[[models]]
id = "my-two-stream"
title = "My two-stream net"
factory = "stlens_test_own_net:build"
[models.inputs.appearance]
channels = 3
frames = 4
height = 16
width = 16
mean = [0.5, 0.5, 0.5]
std = [0.25, 0.25, 0.25]
[models.inputs.motion]
channels = 2
frames = 4
height = 16
width = 16
scale = 4.0
[models.streams]
appearance = "appearance"
motion = "motion"
fusion = "fusion"
"""


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    (tmp_path / "stlens_test_own_net.py").write_text(NET)
    path = tmp_path / "models.toml"
    path.write_text(MODEL_FILE)
    return path


def test_models_of_a_model_file_are_listed_and_visualised(make_server, model_file):
    server = make_server(models=model_file)
    ids = [m["id"] for m in server.http.get("/api/models").json()]
    assert "my-two-stream" in ids and "synth-conv-fusion" in ids
    detail = server.http.get("/api/models/my-two-stream").json()
    streams = {layer["id"]: layer["stream"] for layer in detail["layers"]}
    assert streams["appearance"] == "appearance" and streams["motion"] == "motion" and streams["logits"] == "fusion"
    body = {"model": "my-two-stream", "layer": "appearance", "unit": 3, "settings": {"steps": 4}}
    messages = run_live(server, body)
    assert messages[-1]["type"] == "done"
    arrays = np.load(io.BytesIO(server.http.get(messages[-1]["result"]["inputs"]).content))
    assert sorted(arrays.files) == ["appearance", "appearance_alpha"] and arrays["appearance"].shape == (4, 16, 16, 3)


def test_serve_refuses_a_broken_model_file_with_a_message(tmp_path: Path, capsys):
    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[[models]]\nid = "x"\ntitle = "x"\nfactory = "no_such_module:build"\n'
        "[models.inputs.appearance]\nchannels = 3\nframes = 4\nheight = 16\nwidth = 16\n"
    )
    assert main(["serve", "--models", str(broken), "--data-dir", str(tmp_path / "var")]) == 2
    assert "no_such_module" in capsys.readouterr().err
    assert main(["serve", "--models", str(tmp_path / "missing.toml")]) == 2


def test_a_model_that_cannot_be_loaded_any_more_is_503_not_500(make_server, tmp_path: Path):
    (tmp_path / "stlens_test_own_net.py").write_text(NET)
    namespace: dict = {}
    exec(NET, namespace)
    checkpoint = tmp_path / "own.pt"
    torch.save(namespace["build"]().state_dict(), checkpoint)
    path = tmp_path / "models.toml"
    path.write_text(
        MODEL_FILE.replace(
            'factory = "stlens_test_own_net:build"\n', 'factory = "stlens_test_own_net:build"\ncheckpoint = "own.pt"\n'
        )
    )
    server = make_server(models=path)
    checkpoint.unlink()  # the weights vanish after the server started
    response = server.http.get("/api/models/my-two-stream")
    assert response.status_code == 503
    assert "could not be loaded" in response.json()["detail"]
    body = {"model": "my-two-stream", "layer": "appearance", "unit": 0, "settings": {"steps": 2}}
    assert server.http.post("/api/visualizations", json=body).status_code == 503
    assert server.http.get("/api/health").status_code == 200
