"""How far to trust a finished visualisation: measured after the run, never part of its objective.

A picture that drives its unit hard is not yet a picture of what the unit responds to: it may be a
superstimulus that fits one network's quirks. Four measures, each in plain words too:

1. **reach**: the objective against the unit's strongest clip of the test set (the same objective);
2. **judges** (class logits of the synthetic world's models): what independently trained nets, which
   the optimisation never saw, predict for the clip (stlens.models.judges);
3. **path similarity** (Geirhos et al., "Don't trust your eyes", ICML 2024): at each earlier layer, is
   the clip's activation pattern closer, by rank correlation, to the unit's top test clips than to
   random test clips? A visualisation that reaches the unit by another road than real clips do fails
   at many layers. The pattern is each channel's peak over positions, less the test clips' mean
   pattern: channel means of early layers are dominated by the background's texture, and with them
   real held-out clips of a class failed as often as noise did (bench/path_calibration.py);
4. **natural statistics**: spectral slope and saturation of the RGB, speed of the flow, beside the
   same figures of the model's training clips: inside or outside the middle 90% of them.

Reach and path similarity need the model's test clips: the synthetic world's, for the models that take
them. Everything here is pure computation over a loaded model.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import torch
from pydantic import BaseModel

from ..engine.render import build_objective
from ..engine.settings import VisualizationSettings
from ..models.introspect import LayerProbe, recorded_outputs
from ..models.judges import judges_of
from ..models.registry import LoadedModel
from ..models.spec import LOGITS, STREAMS, LayerInfo, Stream
from ..models.spectra import clip_statistics
from .clip import to_tensor
from .synthset import batches, example_clips
from .unit_examples import examples_available

TOP_CLIPS = 5
RANDOM_CLIPS = 20
RANDOM_SEED = 0
CACHED_MODELS = 8
SURE = 0.5  # a judge that names the class below this is said to be unsure of it


class Reach(BaseModel):
    objective: float
    best_clip: int  # index in the test clips
    best_clip_label: str
    best_clip_objective: float
    clips: int
    ratio: float | None  # objective / best clip's objective (None when the best clip's is not positive)


class JudgeVerdict(BaseModel):
    judge: str
    title: str
    streams: list[str]
    predicted: str
    probability: float  # of the predicted class
    target_probability: float  # of the visualised class
    agrees: bool


class LayerSimilarity(BaseModel):
    layer: str
    top: float  # mean rank correlation with the unit's top test clips
    random: float  # ... with random test clips
    holds: bool


class PathSimilarity(BaseModel):
    layers: list[LayerSimilarity]
    holds_at: int
    of: int


class NaturalStatistics(BaseModel):
    clip: dict[str, float | None]
    training: dict[str, float | None]  # the training clips' means
    # the middle 90% of the training clips, [low, high] (None where the model's spectra do not say)
    training_range: dict[str, list[float] | None] = {}


class Faithfulness(BaseModel):
    reach: Reach | None = None
    judges: list[JudgeVerdict] | None = None
    path: PathSimilarity | None = None
    natural: NaturalStatistics | None = None
    summary: list[str]  # the measures in plain words, most telling first


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rank correlation of each row of ``a`` (N, C) with each row of ``b`` (M, C): (N, M). Ties get
    their average rank (ReLU layers have many zeros)."""
    ra, rb = _ranks(a), _ranks(b)
    ra = ra - ra.mean(1, keepdim=True)
    rb = rb - rb.mean(1, keepdim=True)
    norms = ra.norm(dim=1, keepdim=True) * rb.norm(dim=1, keepdim=True).T
    return (ra @ rb.T) / norms.clamp(min=1e-12)


def _ranks(x: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x, dtype=torch.float64)
    for i, row in enumerate(x.double()):
        _, inverse, counts = torch.unique(row, return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).double()
        out[i] = (ends - (counts.double() - 1) / 2)[inverse]
    return out


def _earlier_layers(model: LoadedModel, layer: LayerInfo) -> list[LayerInfo]:
    """The layers before ``layer`` in forward order whose inputs are among its inputs."""
    earlier = []
    for info in model.layers:
        if info.id == layer.id:
            break
        if set(info.inputs) <= set(layer.inputs) and info.id != LOGITS:
            earlier.append(info)
    return earlier


def _model_inputs(
    model: LoadedModel, layer: LayerInfo, display: Mapping[Stream, torch.Tensor]
) -> dict[Stream, torch.Tensor]:
    """Model-space inputs of the streams the layer depends on; a neutral (zero) model-space input for the
    others where the model needs every stream, as the engine gives it."""
    inputs = {s: model.spec.inputs[s].to_model(display[s]) for s in layer.inputs}
    if not getattr(model.module, "partial_inputs", False):
        batch = next(iter(inputs.values())).shape[0]
        for s in model.spec.streams:
            inputs.setdefault(s, torch.zeros(batch, *model.spec.inputs[s].shape))
    return inputs


@torch.no_grad()
def _pass(
    model: LoadedModel, layer: LayerInfo, earlier: list[LayerInfo], inputs: Mapping[Stream, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One forward pass to ``layer``: its output and each earlier layer's per-channel peaks."""
    with recorded_outputs(model.module, [e.id for e in earlier]) as outputs:
        probe = LayerProbe(model.module, layer.id)
        try:
            target = probe({str(s): x for s, x in inputs.items()})
        finally:
            probe.close()
        peaks = {e.id: outputs[e.id].flatten(2).amax(-1) if outputs[e.id].ndim > 2 else outputs[e.id] for e in earlier}
    return target, peaks


class _TestClipCache:
    """Per model weights and layer: every test clip's target output and earlier layers' channel means."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[str, str], tuple[torch.Tensor, dict[str, torch.Tensor]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: LoadedModel, layer: LayerInfo, earlier: list[LayerInfo]):
        key = (model.weights_hash, layer.id)
        with self._lock:
            if key not in self._cache:
                outputs, means = [], []
                partial = getattr(model.module, "partial_inputs", False)
                with model.lock:
                    for batch in batches(example_clips()):
                        streams = layer.inputs if partial else STREAMS
                        inputs: dict[Stream, torch.Tensor] = {s: batch[s] for s in streams}
                        out, m = _pass(model, layer, earlier, inputs)
                        outputs.append(out)
                        means.append(m)
                merged = {e.id: torch.cat([m[e.id] for m in means]) for e in earlier}
                self._cache[key] = (torch.cat(outputs), merged)
                while len(self._cache) > CACHED_MODELS:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(key)
            return self._cache[key]


_TEST_CLIPS = _TestClipCache()


def _path_similarity(
    clip_means: dict[str, torch.Tensor], test_means: dict[str, torch.Tensor], scores: torch.Tensor
) -> PathSimilarity:
    order = scores.argsort(descending=True)
    top = order[:TOP_CLIPS]
    rest = order[TOP_CLIPS:]
    generator = torch.Generator().manual_seed(RANDOM_SEED)
    random = rest[torch.randperm(len(rest), generator=generator)[:RANDOM_CLIPS]]
    layers = []
    for name, mine in clip_means.items():
        centre = test_means[name].mean(0, keepdim=True)
        correlation = spearman(mine - centre, test_means[name] - centre)[0]
        to_top, to_random = float(correlation[top].mean()), float(correlation[random].mean())
        holds = to_top > to_random
        layers.append(LayerSimilarity(layer=name, top=round(to_top, 4), random=round(to_random, 4), holds=holds))
    return PathSimilarity(layers=layers, holds_at=sum(x.holds for x in layers), of=len(layers))


def _unit_objective(settings: VisualizationSettings, unit: int, batch: int):
    """The run's objective of ``unit`` for a batch (without the diversity term, which needs a batch of runs)."""
    return build_objective(settings.model_copy(update={"diversity": 0.0}), [unit] * batch)


def assess(
    model: LoadedModel,
    layer_id: str,
    unit: int,
    settings: VisualizationSettings,
    inputs: Mapping[str, np.ndarray],
) -> Faithfulness:
    """The faithfulness of one visualisation: ``inputs`` are its display-space clips (T, H, W, C) per
    stream the layer depends on."""
    layer = model.layer(layer_id)
    display: dict[Stream, torch.Tensor] = {s: to_tensor(inputs[s]) for s in STREAMS if s in inputs}
    objective = _unit_objective(settings, unit, 1)
    earlier = _earlier_layers(model, layer)
    module_inputs = _model_inputs(model, layer, display)
    with model.lock:
        target, clip_means = _pass(model, layer, earlier, module_inputs)
    value = float(objective(target)[0])
    result = Faithfulness(summary=[])

    if examples_available(model.spec):
        test_target, test_means = _TEST_CLIPS.get(model, layer, earlier)
        scores = _unit_objective(settings, unit, len(test_target))(test_target)
        best = int(scores.argmax())
        labels = example_clips().labels
        best_value = float(scores[best])
        result.reach = Reach(
            objective=round(value, 4),
            best_clip=best,
            best_clip_label=model.spec.labels[int(labels[best])],
            best_clip_objective=round(best_value, 4),
            clips=len(scores),
            ratio=round(value / best_value, 3) if best_value > 0 else None,
        )
        if earlier:
            result.path = _path_similarity(clip_means, test_means, scores)

    if layer.id == LOGITS and set(inputs) == set(model.spec.streams):
        verdicts = []
        for judge in judges_of(model.spec.id):
            seen = {s: model.spec.inputs[s].to_model(display[s]) for s in judge.streams}  # type: ignore[index]
            probabilities = judge.probabilities(seen)[0]
            predicted = int(probabilities.argmax())
            verdicts.append(
                JudgeVerdict(
                    judge=judge.id,
                    title=judge.title,
                    streams=list(judge.streams),
                    predicted=model.spec.labels[predicted],
                    probability=round(float(probabilities[predicted]), 4),
                    target_probability=round(float(probabilities[unit]), 4),
                    agrees=predicted == unit,
                )
            )
        result.judges = verdicts or None

    spectra = getattr(model, "spectra", None)
    clip_stats = clip_statistics(inputs.get("appearance"), inputs.get("motion"))
    training = spectra.statistics if spectra is not None else {}
    bounds = {k: spectra.range_of(k) if spectra is not None else (float("nan"),) * 2 for k in clip_stats}
    result.natural = NaturalStatistics(
        clip={k: _finite(v) for k, v in clip_stats.items()},
        training={k: _finite(training.get(k, float("nan"))) for k in clip_stats},
        training_range={
            k: [low, high] if np.isfinite([low, high]).all() else None for k, (low, high) in bounds.items()
        },
    )
    result.summary = summary(result, model.spec.labels[unit] if layer.id == LOGITS else None)
    return result


def summary(result: Faithfulness, target_class: str | None) -> list[str]:
    """The measures in plain words."""
    lines = []
    if result.judges:
        agreeing = [j for j in result.judges if j.agrees]
        unsure = sum(j.probability < SURE for j in agreeing)  # a top choice among ten classes may be a guess
        both = [j for j in result.judges if len(j.streams) == 2]
        # to be read aloud: the judges' names hold commas, so each is followed by its verdict in brackets
        lines.append(
            f"{len(agreeing)} of {len(result.judges)} independent models see '{target_class}' in it"
            + f" ({sum(j.agrees for j in both)} of the {len(both)} that see both RGB and motion)"
            + (f"; {unsure} of them unsure, under {100 * SURE:.0f}%" if unsure else "") + ": "
            + "; ".join(f"{_judge_name(j)} ({j.predicted}, {100 * j.probability:.0f}%)" for j in result.judges)
        )
    if result.path is not None:
        lines.append(
            f"At {result.path.holds_at} of {result.path.of} earlier layers its activations look more like the unit's"
            " top test clips than like random ones"
            + (" (it reaches the unit the way real clips do)" if 2 * result.path.holds_at > result.path.of
               else " (it may reach the unit by a road real clips do not take)")
        )
    if result.reach is not None:
        r = result.reach
        if r.ratio is not None:
            lines.append(
                f"Drives the unit {r.ratio:.1f}x as hard as the test clip that drives it hardest of {r.clips}"
                f" (a '{r.best_clip_label}' clip: ranked by this objective; the dataset examples rank by the peak)"
            )
        else:
            lines.append(f"No test clip drives this unit above zero; this clip reaches {r.objective:.3g}")
    if result.natural is not None:
        lines.extend(_statistics_line(result.natural))
    return lines


# per statistic: its name, its unit, and what a clip below / above the training clips' range looks like
STATISTIC_WORDS = {
    "rgb_slope": ("spectral slope", "", "smoother", "more fine texture"),
    "saturation": ("saturation", "", "greyer", "more saturated"),
    "speed_median": ("median speed", " px/frame", "slower", "faster"),
}


def placement(natural: NaturalStatistics) -> dict[str, str]:
    """Per statistic of STATISTIC_WORDS the clip has and the model's spectra give a range for: whether the
    clip lies ``below``, ``inside`` or ``above`` the middle 90% of the training clips."""
    out = {}
    for key in STATISTIC_WORDS:
        value, bounds = natural.clip.get(key), natural.training_range.get(key)
        if value is not None and bounds is not None:
            out[key] = "below" if value < bounds[0] else "above" if value > bounds[1] else "inside"
    return out


def _statistics_line(natural: NaturalStatistics) -> list[str]:
    """The clip's statistics beside the training clips', each with a verdict where their range is known:
    how many are inside the middle 90% of the training clips, and which way the others lie."""
    where = placement(natural)
    parts = []
    for key, (name, unit, below, above) in STATISTIC_WORDS.items():
        value = natural.clip.get(key)
        if value is None:
            continue
        text = f"{name} {value:.2f}{unit}"
        bounds, mean = natural.training_range.get(key), natural.training.get(key)
        if key in where and bounds is not None:
            verdict = {"below": below, "above": above}.get(where[key], "inside")
            parts.append(f"{text} ({verdict}: training clips {bounds[0]:.2f} to {bounds[1]:.2f}{unit})")
        else:
            parts.append(text + (f" (training clips {mean:.2f}{unit} on average)" if mean is not None else ""))
    if not parts:
        return []
    inside = sum(v == "inside" for v in where.values())
    head = "Statistics" + (f", {inside} of {len(where)} inside the middle 90% of the training clips" if where else "")
    return [f"{head}: " + ", ".join(parts)]


def _judge_name(verdict: JudgeVerdict) -> str:
    return verdict.title.removeprefix("Judge: ").removeprefix("Synthetic actions, ")

