"""Videos made in memory (no sample files needed) and the built-in small models, loaded on the CPU."""

from __future__ import annotations

import io
import struct
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


def canvas_gif(width: int = 4096, height: int = 2160, frames: int = 1000) -> bytes:
    """A GIF of ``frames`` 1x1-pixel images on a ``width`` x ``height`` canvas, written byte by byte:
    about 23 bytes a frame to send, but a full canvas a frame for the decoder (the attack of issue 16)."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + bytes([0, 0, 0, 255, 255, 255]))
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    for i in range(frames):
        out += b"\x21\xf9\x04\x00\x02\x00\x00\x00"  # graphic control: 20 ms a frame (20 s in all)
        # image descriptor (x, y, 1x1, no local palette), LZW minimum code size 2: clear, index 0, end
        out += b"\x2c" + struct.pack("<HHHHB", i % width, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return bytes(out + b"\x3b")


def big_h264(frames: int = 80, width: int = 4096, height: int = 2160) -> bytes:
    """Black 4096x2160 H.264 frames (x264 ultrafast): a small file whose every frame is large to decode."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        black = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
        for _ in range(frames):
            for packet in stream.encode(black):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def big_h264_file() -> bytes:
    return big_h264()


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
