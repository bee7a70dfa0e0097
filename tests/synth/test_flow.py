"""The flow estimator: known shifts come back in pixels (x, y), bad input is refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stlens.flow.estimate import FLOW_CLIP, estimate_flow


def _texture(side: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    coarse = rng.uniform(0, 255, (side // 6, side // 6, 3)).astype(np.float32)
    return cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


def test_a_shifted_texture_gives_its_shift():
    big = _texture(96)
    dx, dy = 2, -1
    frames = np.stack([big[16:80, 16:80], big[16 - dy : 80 - dy, 16 - dx : 80 - dx]])
    flow = estimate_flow(frames)
    assert flow.shape == (1, 64, 64, 2) and flow.dtype == np.float32
    centre = flow[0, 16:48, 16:48].reshape(-1, 2)
    np.testing.assert_allclose(np.median(centre, axis=0), [dx, dy], atol=0.25)


def test_flow_is_clipped():
    frames = np.stack([_texture(64), np.roll(_texture(64), 30, axis=1)])
    assert np.abs(estimate_flow(frames)).max() <= FLOW_CLIP


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((1, 32, 32, 3), np.uint8),
        np.zeros((3, 32, 32, 3), np.float32),
        np.zeros((3, 32, 32), np.uint8),
        np.zeros((3, 4, 32, 3), np.uint8),
        np.zeros((2, 2000, 32, 3), np.uint8),
    ],
)
def test_bad_input_is_refused(frames):
    with pytest.raises(ValueError):
        estimate_flow(frames)
