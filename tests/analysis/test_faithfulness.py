"""Faithfulness: reach, judges, path similarity and natural statistics of a clip for a unit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stlens.analysis.faithfulness import Faithfulness, JudgeVerdict, NaturalStatistics, assess, spearman, summary
from stlens.analysis.synthset import example_clips
from stlens.engine import VisualizationSettings
from stlens.flow.estimate import estimate_flow
from stlens.models.judges import all_judges, judges_of
from stlens.synth.actions import LABELS
from stlens.synth.dataset import make_clip

SETTINGS = VisualizationSettings()


def real_clip(label: str, index: int = 0) -> dict[str, np.ndarray]:
    """A training-split clip of ``label`` (never among the test clips the measures compare with)."""
    clip = make_clip(0, "train", LABELS.index(label) + 10 * index)
    return {"appearance": clip.frames[:8].astype(np.float32) / 255, "motion": estimate_flow(clip.frames)}


def average_ranks(x: np.ndarray) -> np.ndarray:
    order = x.argsort(kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        ranks[x == value] = ranks[x == value].mean()
    return ranks


def test_spearman_is_the_correlation_of_average_ranks():
    rng = np.random.default_rng(0)
    a = np.maximum(rng.normal(size=(3, 40)), 0)  # many ties at zero, as after a ReLU
    b = np.maximum(rng.normal(size=(2, 40)), 0)
    expected = np.array([[np.corrcoef(average_ranks(x), average_ranks(y))[0, 1] for y in b] for x in a])
    np.testing.assert_allclose(spearman(torch.from_numpy(a), torch.from_numpy(b)).numpy(), expected, atol=1e-9)


def test_the_judges_are_the_other_trained_nets_of_the_synthetic_world():
    ids = {j.id for j in judges_of("synth-conv-fusion")}
    assert "synth-late-fusion" in ids and "synth-conv-fusion" not in ids
    assert {j.id for j in all_judges()} >= {"synth-conv-fusion-seed1", "synth-appearance-seed1", "synth-motion-seed1"}
    assert judges_of("i3d-kinetics400") == []
    for judge in all_judges():
        assert judge.card["labels"] == list(LABELS)


def test_a_real_clip_of_the_class_is_recognised_and_follows_the_path_of_real_clips(conv_fusion):
    result = assess(conv_fusion, "logits", LABELS.index("walk"), SETTINGS, real_clip("walk"))
    assert result.judges is not None and len(result.judges) == 4
    two_stream = [j for j in result.judges if len(j.streams) == 2]
    assert all(j.agrees for j in two_stream), result.judges
    assert result.path is not None and 2 * result.path.holds_at > result.path.of
    assert result.reach is not None and 0 < result.reach.ratio <= 1.5
    assert any("independent models see 'walk'" in line for line in result.summary)


def test_noise_reaches_a_unit_by_another_road_than_real_clips(conv_fusion):
    rng = np.random.default_rng(0)
    noise = {"appearance": rng.random((8, 64, 64, 3)).astype(np.float32), "motion": rng.normal(0, 4, (8, 64, 64, 2)).astype(np.float32)}
    unit = LABELS.index("walk")
    real = assess(conv_fusion, "logits", unit, SETTINGS, real_clip("walk"))
    fake = assess(conv_fusion, "logits", unit, SETTINGS, noise)
    assert fake.path.holds_at < real.path.holds_at
    assert fake.natural.clip["saturation"] > real.natural.clip["saturation"]
    assert fake.natural.clip["rgb_slope"] > real.natural.clip["rgb_slope"]  # flatter: texture
    statistics = next(line for line in fake.summary if line.startswith("Statistics"))
    assert "saturation" in statistics and "more saturated: training clips" in statistics, statistics


def test_the_statistics_line_says_where_a_clip_lies_against_the_training_clips():
    natural = NaturalStatistics(
        clip={"rgb_slope": -1.5, "saturation": 0.9, "speed_median": 0.1, "speed_p90": 0.5},
        training={"rgb_slope": -1.5, "saturation": 0.3, "speed_median": 0.8, "speed_p90": 1.5},
        training_range={"rgb_slope": [-1.7, -1.2], "saturation": [0.1, 0.5], "speed_median": [0.2, 1.8],
                        "speed_p90": [0.4, 3.9]},
    )
    line = summary(Faithfulness(natural=natural, summary=[]), None)[0]
    assert line == (
        "Statistics, 1 of 3 inside the middle 90% of the training clips: spectral slope -1.50 (inside: training"
        " clips -1.70 to -1.20), saturation 0.90 (more saturated: training clips 0.10 to 0.50), median speed"
        " 0.10 px/frame (slower: training clips 0.20 to 1.80 px/frame)"
    )
    unknown = natural.model_copy(update={"training_range": {}})
    assert summary(Faithfulness(natural=unknown, summary=[]), None)[0] == (
        "Statistics: spectral slope -1.50 (training clips -1.50 on average), saturation 0.90 (training clips 0.30"
        " on average), median speed 0.10 px/frame (training clips 0.80 px/frame on average)"
    )


def test_a_test_clip_reaches_at_most_the_strongest_test_clip(conv_fusion):
    clips = example_clips()
    unit = 3
    clip = {"appearance": clips.frames[7].astype(np.float32) / 255, "motion": clips.flow[7].astype(np.float32)}
    result = assess(conv_fusion, "fusion.conv", unit, SETTINGS, clip)
    assert result.judges is None  # only class logits are judged
    assert result.reach.clips == len(clips)
    assert result.reach.objective <= result.reach.best_clip_objective + 1e-4
    assert result.path.of == 6  # three conv layers in each stream before the fusion


def test_a_stream_layer_is_measured_on_its_own_stream(late_fusion):
    clip = real_clip("run")
    result = assess(late_fusion, "motion.conv3", 2, SETTINGS, {"motion": clip["motion"]})
    assert [layer.layer for layer in result.path.layers] == ["motion.conv1", "motion.conv2"]
    assert result.natural.clip["saturation"] is None and result.natural.clip["speed_median"] > 0
    assert result.natural.training["speed_median"] == pytest.approx(conv_fusion_speed(late_fusion), rel=1e-6)


def conv_fusion_speed(model) -> float:
    return model.spectra.statistics["speed_median"]


def test_a_judge_that_names_the_class_as_a_guess_is_said_to_be_unsure():
    def verdict(judge: str, streams: list[str], probability: float) -> JudgeVerdict:
        return JudgeVerdict(judge=judge, title=f"Judge: {judge}", streams=streams, predicted="jump",
                            probability=probability, target_probability=probability, agrees=True)

    sure = [verdict("a", ["appearance", "motion"], 0.9), verdict("b", ["motion"], 0.7)]
    line = summary(Faithfulness(judges=sure, summary=[]), "jump")[0]
    assert line.startswith("2 of 2 independent models see 'jump' in it (1 of the 1 that see both RGB and motion): ")
    guessing = [*sure, verdict("c", ["appearance"], 0.18)]
    line = summary(Faithfulness(judges=guessing, summary=[]), "jump")[0]
    assert line.startswith("3 of 3 independent models see 'jump' in it (1 of the 1 that see both RGB and motion);"
                           " 1 of them unsure, under 50%: ")
    assert "c (jump, 18%)" in line
