"""The flow codings' robust scale: one spike does not wash the clip out; media, previews and legend agree."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from stlens.flow import coding
from stlens.media.frames import strip
from stlens.media.outputs import preview_strips, render_media

SPEED = 2.0  # px


def spiky_flow() -> np.ndarray:
    """Rightward motion at SPEED px everywhere, with one vector 500 times as fast, downwards."""
    flow = np.zeros((4, 16, 16, 2), np.float32)
    flow[..., 0] = SPEED
    flow[2, 2, 2] = (0.0, 1000.0)
    return flow


def saturation(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float32)
    return rgb.max(-1) - rgb.min(-1)


def test_a_spike_does_not_wash_out_the_clip():
    flow = spiky_flow()
    assert coding.saturation_scale(flow) == pytest.approx(SPEED)
    images = coding.direction_coding(flow)
    assert saturation(images[0]).mean() > 200  # full colour, not the near-white of a 1000 px scale
    by_largest = coding.direction_coding(flow, scale=1000.0)
    assert saturation(by_largest[0]).mean() < 5
    assert (images[2, 2, 2] == coding.direction_coding(flow[2:3, 2:3, 2:3] / 500)[0, 0, 0]).all()  # clipped, same hue


def test_an_explicit_scale_is_kept_even_above_the_clip_maximum():
    flow = spiky_flow()[:1]  # SPEED everywhere
    half = coding.direction_coding(flow, scale=2 * SPEED)
    full = coding.direction_coding(flow, scale=SPEED)
    assert saturation(half).mean() == pytest.approx(saturation(full).mean() / 2, rel=0.1)
    with pytest.raises(ValueError):
        coding.direction_coding(flow, scale=0.0)


def test_components_and_arrows_clip_at_the_same_scale():
    flow = spiky_flow()
    components = coding.component_coding(flow)
    assert components[0, 0, 0, 0] == 255 and components[2, 2, 2, 1] == 255  # SPEED is full intensity already
    backgrounds = np.full((4, 64, 64, 3), 255, np.uint8)
    drawn = coding.arrows(flow, backgrounds, spacing=16)  # the grid point (8, 8) samples the spike
    assert not np.array_equal(drawn[2][:24], drawn[0][:24])
    assert np.array_equal(drawn[2][24:], drawn[0][24:])  # its arrow stays within its grid cell


def test_media_previews_and_legend_share_the_scale():
    flow = spiky_flow()
    media = render_media({"motion": flow}, {"motion": np.ones(flow.shape[:3], np.float32)})
    legend = json.loads(media["flow-legend.json"])
    assert legend == {"rim_px": pytest.approx(SPEED), "percentile": coding.SATURATION_PERCENTILE}
    wheel = np.asarray(Image.open(io.BytesIO(media["flow-legend.png"])).convert("RGB"))
    side = wheel.shape[1]
    assert (wheel[side:] < 128).any()  # the label under the wheel ("rim = 2 px")
    expected = strip(coding.direction_coding(flow)).astype(np.float32)
    preview_url = preview_strips({"motion": flow})["motion"]
    preview = np.asarray(Image.open(io.BytesIO(base64.b64decode(preview_url.split(",", 1)[1]))).convert("RGB"))
    assert np.abs(preview.astype(np.float32) - expected).mean() < 8  # JPEG, else the same colours
