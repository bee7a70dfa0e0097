"""Every export of a visualisation downloads and opens: GIF and PNG in Pillow, MP4 in PyAV, npz in numpy."""

from __future__ import annotations

import io
import json

import av
import numpy as np
import pytest
from PIL import Image

from stlens.media.frames import STRIP_GAP, display_factor
from stlens.media.outputs import MEDIA_TYPES

from .requests import request

FRAMES, SIDE = 8, 64  # the built-in models' clips


@pytest.fixture(scope="module")
def done(server):
    return server.wait_done(server.http.post("/api/visualizations", json=request(unit=11, steps=4)).json()["id"])


def test_every_export_decodes_to_the_clip(server, done):
    big = SIDE * display_factor(SIDE)
    media = done["result"]["media"]
    clips: dict[str, np.ndarray] = {}  # name -> decoded frames (T, H, W, 3)
    assert set(media) == set(MEDIA_TYPES)
    for name, url in media.items():
        response = server.http.get(url)
        assert response.status_code == 200 and response.headers["content-type"] == MEDIA_TYPES[name], name
        data = io.BytesIO(response.content)
        if name.endswith(".gif"):
            gif = Image.open(data)
            assert (gif.n_frames, gif.size, gif.info["loop"]) == (FRAMES, (big, big), 0), name
            clips[name] = np.stack([np.asarray(gif.seek(t) or gif.convert("RGB")) for t in range(FRAMES)])
        elif name.endswith(".mp4"):
            with av.open(data) as video:
                frames = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
            assert len(frames) == FRAMES and frames[0].shape == (big, big, 3), name
            clips[name] = np.stack(frames)
        elif name == "flow-legend.png":
            legend = Image.open(data)
            legend.load()
            assert legend.width >= 64 and legend.height > legend.width
        elif name.endswith(".png"):
            strip = Image.open(data)
            strip.load()
            assert strip.size == (FRAMES * big + (FRAMES - 1) * STRIP_GAP, big), name
            pixels = np.asarray(strip.convert("RGB"))
            clips[name] = np.stack([pixels[:, t * (big + STRIP_GAP) :][:, :big] for t in range(FRAMES)])
        else:
            assert json.loads(response.content)["rim_px"] > 0
    for stream, strip_name in (("appearance", "appearance.png"), ("motion", "motion-direction.png")):
        for animated in (f"{stream}.gif", f"{stream}.mp4"):  # the same pictures, up to palette / H.264 loss
            error = np.abs(clips[animated].astype(np.float32) - clips[strip_name]).mean()
            assert error < 12, (animated, error)

    response = server.http.get(done["result"]["inputs"])
    assert response.headers["content-disposition"] == f'attachment; filename="{done["id"]}-inputs.npz"'
    arrays = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert arrays["appearance"].shape == (FRAMES, SIDE, SIDE, 3) and arrays["motion"].shape == (FRAMES, SIDE, SIDE, 2)
    assert all(arrays[k].dtype == np.float32 and np.isfinite(arrays[k]).all() for k in arrays.files)
