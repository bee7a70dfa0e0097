"""Natural spectra: measured from clips, stored without pickles, a power law for any input size."""

from __future__ import annotations

import numpy as np
import pytest
from stlens.models.builtin import builtin_spectra, small_inputs
from stlens.models.spec import InputSpec
from stlens.models.spectra import (
    clip_statistics,
    default_spectra,
    load_spectra,
    measure_spectra,
    power_law_spectra,
    rms_amplitude,
)


def moving_bars(count: int, frames: int = 4, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rgb = np.zeros((count, frames, size, size, 3), np.uint8)
    flow = np.zeros((count, frames, size, size, 2), np.float32)
    for n in range(count):
        colour = rng.integers(0, 256, 3)
        speed = rng.uniform(-2, 2)
        for t in range(frames):
            x = int(size / 2 + speed * t) % size
            rgb[n, t, :, x : x + 3] = colour
            flow[n, t, :, x : x + 3, 0] = speed
    return rgb, flow


def test_a_clip_made_from_a_measured_spectrum_has_the_data_power():
    rgb, flow = moving_bars(20)
    spectra = measure_spectra(rgb, flow, 2.0, "bars")
    amplitude = spectra.amplitude["motion"]
    phases = np.exp(2j * np.pi * np.random.default_rng(1).random(amplitude.shape))
    made = np.fft.irfftn(amplitude * phases, s=(4, 16, 16), axes=(1, 2, 3), norm="ortho")
    data = (flow / 2.0).transpose(0, 4, 1, 2, 3)
    data_power = np.mean([(c - c.mean(axis=(1, 2, 3), keepdims=True)).var() for c in data])
    # Hermitian pairs make a made clip's power only about right, never several times off
    assert made.var() == pytest.approx(data_power, rel=0.5)


def test_rms_amplitude_zeroes_the_mean_and_keeps_energy():
    clips = [np.random.default_rng(k).normal(size=(2, 4, 8, 8)) + 5.0 for k in range(5)]
    amplitude = rms_amplitude(clips)
    assert amplitude.shape == (2, 4, 8, 5)
    assert amplitude[:, 0, 0, 0].tolist() == [0.0, 0.0]
    assert np.all(amplitude >= 0)


def test_spectra_round_trip_through_a_file(tmp_path):
    rgb, flow = moving_bars(10)
    spectra = measure_spectra(rgb, flow, 2.0, "bars")
    spectra.save(tmp_path / "s.npz")
    back = load_spectra(tmp_path / "s.npz")
    assert back.source == "bars"
    np.testing.assert_allclose(back.amplitude["appearance"], spectra.amplitude["appearance"], rtol=1e-2, atol=1e-4)
    assert back.statistics == pytest.approx(spectra.statistics)
    assert back.mean_spread == pytest.approx(spectra.mean_spread, rel=1e-6)
    for name in spectra.statistics:
        assert back.range_of(name) == pytest.approx(spectra.range_of(name))
    np.testing.assert_allclose(back.mean_colour_factor(), spectra.mean_colour_factor(), rtol=1e-6)
    # real clips' mean colours vary together: the factor is of their covariance, lower-triangular
    factor = spectra.mean_colour_factor()
    means = (rgb.astype(np.float64) / 255).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(factor @ factor.T, np.cov(means, rowvar=False), rtol=1e-4, atol=1e-7)


def test_the_range_of_a_statistic_is_the_middle_of_the_clips_and_an_old_file_has_neither_range_nor_covariance(tmp_path):
    rgb, flow = moving_bars(40)
    spectra = measure_spectra(rgb, flow, 2.0, "bars")
    speeds = [clip_statistics(None, f)["speed_p90"] for f in flow]
    low, high = spectra.range_of("speed_p90")
    assert min(speeds) <= low < spectra.statistics["speed_p90"] < high <= max(speeds)
    assert np.mean([low <= v <= high for v in speeds]) == pytest.approx(0.9, abs=0.05)
    spectra.save(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as stored:
        older = {k: stored[k] for k in stored.files if k != "statistics_range"}
    older.pop("mean_colour_spread")
    np.savez(tmp_path / "old.npz", **older)
    old = load_spectra(tmp_path / "old.npz")
    assert all(np.isnan(old.range_of("saturation")))
    # without the covariance, the one spread in every direction
    np.testing.assert_allclose(old.mean_colour_factor(), np.eye(3) * spectra.mean_spread["appearance"], rtol=1e-6)


def test_a_malformed_spectra_file_is_refused(tmp_path):
    np.savez(tmp_path / "bad.npz", amplitude_motion=-np.ones((2, 4, 8, 5)), mean_colour=np.zeros(3), colour=np.eye(3))
    with pytest.raises(ValueError, match="non-negative"):
        load_spectra(tmp_path / "bad.npz")
    np.savez(tmp_path / "short.npz", mean_colour=np.zeros(2), colour=np.eye(3))
    with pytest.raises(ValueError, match="mean_colour"):
        load_spectra(tmp_path / "short.npz")


def test_a_spectrum_of_another_shape_is_refused():
    spectra = builtin_spectra()
    with pytest.raises(ValueError, match="needs"):
        spectra.for_stream("appearance", InputSpec(channels=3, frames=8, height=32, width=32))


def test_the_builtin_spectra_fit_the_builtin_models_and_carry_the_training_statistics():
    spectra = builtin_spectra()
    for stream, spec in small_inputs().items():
        assert tuple(spectra.for_stream(stream, spec).shape) == (spec.channels, spec.frames, spec.height, spec.width // 2 + 1)
    assert -3 < spectra.statistics["rgb_slope"] < -0.5
    assert 0 < spectra.statistics["saturation"] < 1
    assert spectra.statistics["speed_median"] > 0
    for name, mean in spectra.statistics.items():
        low, high = spectra.range_of(name)
        assert low < mean < high, name


def test_the_power_law_fits_any_size_and_grows_flow_with_the_frame():
    small = {"motion": InputSpec(channels=2, frames=8, height=112, width=112, scale=1.0)}
    large = {"motion": InputSpec(channels=2, frames=8, height=224, width=224, scale=1.0)}
    a = power_law_spectra(small).amplitude["motion"]
    b = power_law_spectra(large).amplitude["motion"]
    assert a.shape == (2, 8, 112, 57) and b.shape == (2, 8, 224, 113)
    # the same low frequency (one cycle across the frame) carries twice the displacement at twice the size
    assert b[0, 0, 1, 0] / a[0, 0, 1, 0] == pytest.approx(2 * (0.5) ** -1.6097, rel=0.05)
    assert power_law_spectra(large).statistics["speed_median"] == pytest.approx(
        2 * power_law_spectra(small).statistics["speed_median"]
    )
    assert power_law_spectra(large).range_of("speed_p90") == pytest.approx(
        [2 * v for v in power_law_spectra(small).range_of("speed_p90")]
    )


def test_only_rgb_and_flow_inputs_get_the_power_law():
    assert default_spectra({"appearance": InputSpec(channels=3, frames=1, height=16, width=16)}) is not None
    assert default_spectra({"appearance": InputSpec(channels=1, frames=1, height=16, width=16)}) is None


def test_clip_statistics_tell_texture_from_a_smooth_clip():
    rng = np.random.default_rng(0)
    noise = rng.random((4, 32, 32, 3))
    smooth = np.broadcast_to(np.linspace(0, 1, 32)[None, None, :, None], (4, 32, 32, 3))
    assert clip_statistics(noise, None)["rgb_slope"] > -0.3  # white noise: flat
    assert clip_statistics(smooth, None)["rgb_slope"] < -1.0
    stats = clip_statistics(None, np.full((4, 8, 8, 2), 3.0))
    assert stats["speed_median"] == pytest.approx(np.hypot(3, 3))
    assert np.isnan(stats["saturation"])
