"""Videos made in memory (no sample files needed) and the built-in small models, loaded on the CPU."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from stlens.models.builtin import builtin_entries
from stlens.models.registry import LoadedModel, prepare

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "data" / "samples"


def moving_square(frames: int = 12, height: int = 48, width: int = 64) -> np.ndarray:
    """A bright square moving right by 2 px a frame over a dark textured background."""
    rng = np.random.default_rng(0)
    background = rng.integers(20, 60, (height, width, 3), dtype=np.uint8)
    out = np.repeat(background[None], frames, axis=0)
    for t in range(frames):
        out[t, 16:32, 4 + 2 * t : 20 + 2 * t] = (230, 200, 40)
    return out


def encode(frames: np.ndarray, container: str, codec: str, fps: int = 25) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def gif(frames: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    images = [Image.fromarray(f) for f in frames]
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=40, loop=0)
    return buffer.getvalue()


VIDEO_KINDS = {
    "mp4": lambda f: encode(f, "mp4", "libx264"),
    "webm": lambda f: encode(f, "webm", "libvpx"),
    "avi": lambda f: encode(f, "avi", "mjpeg"),
    "gif": gif,
}


@pytest.fixture(scope="session")
def conv_fusion() -> LoadedModel:
    torch.set_num_threads(1)
    entry = next(e for e in builtin_entries() if e.spec.id == "synth-conv-fusion")
    return prepare(entry, torch.device("cpu"))


@pytest.fixture(scope="session")
def late_fusion() -> LoadedModel:
    torch.set_num_threads(1)
    entry = next(e for e in builtin_entries() if e.spec.id == "synth-late-fusion")
    return prepare(entry, torch.device("cpu"))
