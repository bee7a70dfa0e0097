from __future__ import annotations

import pytest
import torch
from stlens.analysis.crossstream import conjunction_score, cross_stream
from stlens.analysis.examples import dataset_examples
from stlens.analysis.selectivity import class_selectivity, selectivity_index
from stlens.analysis.speed import invariance_index, speed_responses, speed_tuning
from stlens.models.builtin import small_inputs
from stlens.models.introspect import discover_layers
from stlens.models.registry import LoadedModel
from stlens.models.spec import ModelSpec
from torch import nn


def _batches(model: LoadedModel, n: int, size: int = 4, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        {s: torch.randn(size, *model.spec.inputs[s].shape, generator=g) for s in model.spec.streams} for _ in range(n)
    ]


class AndOr(nn.Module):
    """Fusion unit 0 = relu(a) * relu(m) (needs both), unit 1 = relu(a) (appearance alone), unit 2 = relu(m),
    unit 3 = relu(a) + relu(m) (a sum of separate parts, as in late fusion)."""

    def __init__(self) -> None:
        super().__init__()
        self.appearance = nn.Conv3d(3, 1, 1, bias=False)
        self.motion = nn.Conv3d(2, 1, 1, bias=False)
        self.fusion = nn.Identity()
        self.stlens_layers = ["appearance", "motion", "fusion"]
        with torch.no_grad():
            self.appearance.weight.fill_(1.0)
            self.motion.weight.fill_(1.0)

    def forward(self, appearance: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.appearance(appearance))
        m = torch.relu(self.motion(motion))
        features = self.fusion(torch.cat([a * m, a, m, a + m], 1))
        return features.mean((2, 3, 4))


def _and_or() -> LoadedModel:
    module = AndOr().eval()
    spec = ModelSpec(id="and-or", title="and-or", inputs=small_inputs(), labels=("and", "a", "m", "sum"))
    return LoadedModel(
        spec=spec, module=module, layers=discover_layers(module, spec), weights_hash="x", device=torch.device("cpu")
    )


def test_conjunction_tells_and_units_from_single_stream_units() -> None:
    model = _and_or()
    display = [{"appearance": torch.rand(4, 3, 8, 64, 64), "motion": torch.rand(4, 2, 8, 64, 64) * 4} for _ in range(2)]
    batches = [{s: model.spec.inputs[s].to_model(x) for s, x in b.items()} for b in display]
    result = cross_stream(model, "fusion", batches, top_clips=3)
    assert result.conjunction[0] == pytest.approx(1.0)  # zero flow silences a * m, a flat frame silences a
    assert result.conjunction[1] == pytest.approx(0.0)
    assert result.conjunction[2] == pytest.approx(0.0)
    assert result.conjunction[3] == pytest.approx(0.0, abs=1e-5)  # additive: no interaction
    assert result.appearance_only[1] == pytest.approx(result.both[1])
    assert result.motion_only[1] == pytest.approx(0.0, abs=1e-6)
    assert result.neither == pytest.approx([0.0, 0.0, 0.0, 0.0], abs=1e-6)
    with pytest.raises(ValueError, match="not a fusion layer"):
        cross_stream(model, "motion", batches)


def test_conjunction_score_formula() -> None:
    both = torch.tensor([2.0, 2.0, 3.0, 1.0, 1.0])
    a = torch.tensor([0.0, 2.0, 1.5, 0.5, 1.0])
    m = torch.tensor([0.0, 0.0, 1.5, 0.5, 0.0])
    neither = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0])
    # AND, appearance alone, sum, partly super-additive, not driven
    assert conjunction_score(both, a, m, neither).tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0, 0.0])
    assert (
        conjunction_score(torch.tensor([4.0]), torch.tensor([1.0]), torch.tensor([1.0]), torch.tensor([0.0])).item()
        == 0.5
    )


def test_late_fusion_logits_have_no_conjunction(late_fusion: LoadedModel) -> None:
    """Late fusion adds a per-stream classifier's logits: their interaction is zero whatever the weights."""
    result = cross_stream(late_fusion, "logits", _batches(late_fusion, 2), top_clips=4)
    assert max(result.conjunction) == pytest.approx(0.0, abs=1e-4)


def test_selectivity_index_extremes() -> None:
    means = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [3.0, 1.0, 1.0]])
    index, preferred = selectivity_index(means)
    assert index.tolist() == pytest.approx([1.0, 0.0, 0.0, 0.5])
    assert preferred.tolist()[0] == 0 and preferred.tolist()[3] == 0


def test_class_selectivity_finds_the_specific_unit() -> None:
    model = _and_or()
    # class 0 clips have appearance and motion; class 1 appearance only; class 2 motion only; class 3 neither
    a = torch.rand(4, 3, 8, 64, 64) + 0.5
    m = torch.rand(4, 2, 8, 64, 64) + 0.5
    a[2:] = 0.45  # the neutral frame (normalised to 0)
    m[1] = 0.0
    m[3] = 0.0
    inputs = {
        "appearance": model.spec.inputs["appearance"].to_model(a),
        "motion": model.spec.inputs["motion"].to_model(m),
    }
    result = class_selectivity(model, "fusion", [(inputs, torch.tensor([0, 1, 2, 3]))])
    assert result.index[0] == pytest.approx(1.0)
    assert result.preferred[0] == 0
    assert 0 in result.specific
    assert result.index[1] < 0.6 and result.index[2] < 0.6 and result.index[3] < 0.6
    with pytest.raises(ValueError, match="every class"):
        class_selectivity(model, "fusion", [(inputs, torch.tensor([0, 0, 1, 2]))])


def test_dataset_examples_one_pass_matches_brute_force(conv_fusion: LoadedModel) -> None:
    batches = _batches(conv_fusion, 3)
    examples = dataset_examples(conv_fusion, "motion.conv3", batches, k=2)
    assert len(examples) == 64
    with torch.no_grad():
        outs = torch.cat([conv_fusion.module.motion(b["motion"]) for b in batches])  # (12, 64, 8, 8, 8)
    peaks = outs.flatten(2).amax(-1)
    for unit in (0, 17, 63):
        expected = peaks[:, unit].topk(2).indices.tolist()
        assert [e.clip for e in examples[unit]] == expected
        assert examples[unit][0].activation == pytest.approx(float(peaks[expected[0], unit]), rel=1e-5)
        clip, (t, y, x) = expected[0], examples[unit][0].where
        cell = (int(t * 8), int(y * 8), int(x * 8))
        assert float(outs[clip, unit][cell]) == pytest.approx(examples[unit][0].activation, rel=1e-5)
    logits = dataset_examples(conv_fusion, "logits", batches, k=3)
    assert len(logits) == conv_fusion.spec.num_classes and logits[0][0].where is None


def test_invariance_index() -> None:
    responses = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 4.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert invariance_index(responses).tolist() == [1.0, 0.25, 0.0]


def test_speed_tuning_of_a_speed_blind_and_a_speed_tuned_layer(conv_fusion: LoadedModel) -> None:
    """Appearance units see single frames: replaying by speed (with the frames unchanged) leaves them
    exactly invariant, while motion units, fed flow scaled by the speed, are not."""
    base = _batches(conv_fusion, 1, size=6)[0]

    def replay(speed: float) -> dict[str, torch.Tensor]:
        return {"appearance": base["appearance"], "motion": base["motion"] * speed}

    speeds = (0.25, 1.0, 4.0)
    responses = speed_responses(conv_fusion, ["appearance.conv1", "motion.conv1"], replay, speeds)
    assert responses["motion.conv1"].shape == (6, 16, 3)
    appearance = speed_tuning(responses["appearance.conv1"], speeds, top_clips=3)
    motion = speed_tuning(responses["motion.conv1"], speeds, top_clips=3)
    assert appearance.layer_invariance == pytest.approx(1.0)
    assert motion.layer_invariance < 0.95
