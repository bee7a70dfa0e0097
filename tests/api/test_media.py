"""Flow codings and result media: one scale per clip, grey zero level, arrows, decodable files."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from stlens.flow import coding
from stlens.media import encode
from stlens.media.frames import display_factor, enlarge, strip, to_uint8
from stlens.media.outputs import MEDIA_TYPES, inputs_npz, media_names, preview_strips, render_media


def uniform_flow(frames: int = 4, side: int = 16, speeds: tuple[float, ...] = (1, 2, 3, 4)) -> np.ndarray:
    """Rightward motion whose speed changes from frame to frame."""
    flow = np.zeros((frames, side, side, 2), np.float32)
    flow[..., 0] = np.asarray(speeds, np.float32)[:, None, None]
    return flow


def saturation(rgb: np.ndarray) -> float:
    rgb = rgb.astype(np.float32)
    return float((rgb.max(-1) - rgb.min(-1)).mean())


def test_direction_coding_is_white_at_rest_and_scaled_once_per_clip():
    flow = uniform_flow()
    images = coding.direction_coding(flow)
    assert images.shape == (4, 16, 16, 3) and images.dtype == np.uint8
    assert (coding.direction_coding(np.zeros_like(flow)) == 255).all()
    saturations = [saturation(frame) for frame in images]
    assert saturations == sorted(saturations) and saturations[0] < saturations[-1]  # slower frames are paler
    assert coding.saturation_scale(flow) == pytest.approx(4.0)


def test_direction_coding_tells_directions_apart():
    right, left = uniform_flow(1, speeds=(2,)), -uniform_flow(1, speeds=(2,))
    assert not np.array_equal(coding.direction_coding(right), coding.direction_coding(left))


def test_component_coding_is_grey_at_rest_and_signs_show():
    assert (coding.component_coding(np.zeros((2, 8, 8, 2), np.float32)) == coding.GREY).all()
    flow = np.zeros((1, 8, 8, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3.0, -3.0
    red, green, blue = coding.component_coding(flow)[0, 0, 0].astype(int)
    assert red > coding.GREY > green
    assert blue > coding.GREY  # magnitude


def test_arrows_are_drawn_only_where_there_is_motion():
    flow = uniform_flow(2, speeds=(0, 3))
    backgrounds = np.full((2, 64, 64, 3), 255, np.uint8)
    drawn = coding.arrows(flow, backgrounds, spacing=16)
    assert (drawn[0] == 255).all()
    assert (drawn[1] < 255).any()
    assert (backgrounds == 255).all()  # the input is left alone


def test_legend_is_a_white_cornered_colour_wheel():
    legend = coding.direction_legend(4.0, side=64)
    assert legend.shape == (64 + 64 // 6, 64, 3)  # the wheel, then its label
    assert (legend[0, 0] == 255).all()
    assert saturation(legend[28:36, 2:10]) > saturation(legend[30:34, 30:34])  # saturated rim, pale centre
    with pytest.raises(ValueError):
        coding.direction_legend(4.0, side=4)


def test_bad_flow_shapes_are_refused():
    with pytest.raises(ValueError):
        coding.direction_coding(np.zeros((4, 8, 8, 3), np.float32))


def test_frames_helpers():
    frames = to_uint8(np.array([[[[-1.0, 0.5, 2.0]]]], np.float32))
    assert frames.tolist() == [[[[0, 128, 255]]]]
    assert display_factor(64) == 3 and display_factor(512) == 1
    assert enlarge(np.zeros((2, 4, 5, 3), np.uint8), 3).shape == (2, 12, 15, 3)
    assert strip(np.zeros((3, 4, 5, 3), np.uint8), gap=2).shape == (4, 3 * 5 + 2 * 2, 3)


@pytest.fixture(scope="module")
def inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "appearance": rng.random((4, 16, 16, 3), dtype=np.float32),
        "motion": rng.normal(size=(4, 16, 16, 2)).astype(np.float32),
    }


def alpha_of(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Transparency maps that rise from left to right."""
    return {s: np.broadcast_to(np.linspace(0, 1, x.shape[2]), x.shape[:3]).astype(np.float32) for s, x in inputs.items()}


def test_render_media_makes_every_named_medium(inputs):
    media = render_media(inputs, alpha_of(inputs))
    assert set(media) == set(MEDIA_TYPES)
    gif = Image.open(io.BytesIO(media["appearance.gif"]))
    assert gif.n_frames == 4 and gif.info["loop"] == 0
    strip_image = Image.open(io.BytesIO(media["motion-direction.png"]))
    assert strip_image.height == 16 * display_factor(16)
    with av.open(io.BytesIO(media["motion.mp4"])) as video:
        assert len(list(video.decode(video=0))) == 4


def test_single_stream_media(inputs):
    motion_only = render_media({"motion": inputs["motion"]}, alpha_of(inputs))
    assert set(motion_only) == set(media_names(["motion"]))
    assert not any(name.startswith("appearance") for name in motion_only)


def test_transparency_strips_carry_the_map_as_their_alpha_channel(inputs):
    alpha = alpha_of(inputs)
    media = render_media(inputs, alpha)
    factor = display_factor(16)
    for stream in ("appearance", "motion"):
        rgba = np.asarray(Image.open(io.BytesIO(media[f"{stream}-alpha.png"])))
        assert rgba.shape == (16 * factor, 4 * 16 * factor + 3 * 4, 4)
        first_frame = rgba[:, : 16 * factor, 3]
        assert first_frame[:, 0].max() == 0 and first_frame[:, -1].min() == 255  # left clear, right opaque
    arrays = np.load(io.BytesIO(inputs_npz(inputs, alpha)))
    np.testing.assert_array_equal(arrays["motion_alpha"], alpha["motion"])


def test_previews_and_npz(inputs):
    previews = preview_strips(inputs)
    assert set(previews) == {"appearance", "motion"}
    assert all(url.startswith("data:image/jpeg;base64,") for url in previews.values())
    arrays = np.load(io.BytesIO(inputs_npz(inputs)))
    for stream, x in inputs.items():
        np.testing.assert_array_equal(arrays[stream], x)


def test_mp4_crops_to_even_sides():
    frames = np.zeros((2, 15, 17, 3), np.uint8)
    with av.open(io.BytesIO(encode.mp4(frames))) as video:
        frame = next(video.decode(video=0))
        assert (frame.width, frame.height) == (16, 14)


def test_the_help_pages_colour_wheel_is_the_direction_coding():
    """frontend/images/colour-wheel.png (scripts/make-help-images) is the key of every page: it must
    show what direction_coding draws, its right being motion to the right and its top motion up."""
    path = Path(__file__).resolve().parents[2] / "frontend" / "images" / "colour-wheel.png"
    image = np.asarray(Image.open(path))
    wheel, inside = coding.direction_wheel(image.shape[0])
    assert image.shape[2] == 4 and np.array_equal(image[..., 3] > 0, inside)
    assert np.array_equal(image[..., :3][inside], wheel[inside])
    side = image.shape[0]
    rightward = coding.direction_coding(np.array([[[[1.0, 0.0]]]], np.float32), scale=1.0)[0, 0, 0]
    upward = coding.direction_coding(np.array([[[[0.0, -1.0]]]], np.float32), scale=1.0)[0, 0, 0]
    assert np.abs(image[side // 2, side - 3, :3].astype(int) - rightward).max() < 40
    assert np.abs(image[2, side // 2, :3].astype(int) - upward).max() < 40
