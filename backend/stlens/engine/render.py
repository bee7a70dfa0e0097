"""The optimisation loop: spatiotemporal activation maximisation of one layer's units.

Each step: parameterised clips (display space) -> random spacetime transform -> model space ->
forward truncated at the target layer -> objective minus regularisers -> Adam on the parameters.
A batch holds several units, seeds or regulariser weights of one layer and runs in one
forward/backward pass; each item draws its start and its transforms from its own seed, so its
result does not depend on what else is in the batch (up to the batched kernels' rounding).

An :class:`Optimisation` is the state of a run between steps: ``visualize`` runs one to the end,
a server steps many (``stlens.jobs.stepper``), several of one layer in one pass through the network
(:func:`step_together`), each with its own parameters, Adam, steps, seed, weights and start clip.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np
import torch

from ..models.introspect import LayerProbe
from ..models.registry import LoadedModel
from ..models.spec import InputSpec, Stream
from . import objectives, regularizers
from .eigenclips import eigenclips_of, has_eigenclips
from .graphs import StepOutput, run_steps
from .param import ClipParam, EigenclipBasis, clip_param
from .settings import VisualizationSettings
from .transforms import Draw, SpacetimeJitter

MAX_BATCH = 64
# the spectrum basis's phases step lr * PHASE_LR radians from noise (a phase needs larger steps than an
# amplitude), but only lr from a real clip: its phases are its structure, and larger steps wiped the clip
# out within a few steps (docs/engine.md)
PHASE_LR = 4.0
PHASE_LR_FROM_CLIP = 1.0
PER_ITEM_FIELDS = {"seed", "weights"}  # what may differ between the items of one batch


class Progress:
    """One step's report. The objective and the preview clips are read from the device only when
    a callback asks for them: on a GPU each read waits for the step and copies the clips over,
    which at 64 x 224 x 224 costs more than the step itself, and most callers skip most steps.
    Read them during the callback: a replayed CUDA graph reuses the tensors behind them."""

    def __init__(self, step: int, steps: int, objective: torch.Tensor, clips: Mapping[Stream, torch.Tensor]):
        self.step = step  # 1-based step just finished
        self.steps = steps
        self._objective = objective
        self._clips = clips

    @cached_property
    def objective(self) -> float:
        """Current objective value of the first batch item."""
        return float(self._objective[0])

    @cached_property
    def inputs(self) -> dict[str, np.ndarray]:
        """Display space, first batch item: (T, H, W, C) per stream."""
        return {s: _display_numpy(clip[0]) for s, clip in self._clips.items()}


@dataclass
class Visualization:
    inputs: dict[str, np.ndarray]  # per stream the layer depends on: float32 (B, T, H, W, C), display space
    objective: list[float]  # final objective per batch item (on the untransformed result)
    steps: int
    # per stream, float32 (B, T, H, W) in [0, 1]: where in space-time the objective's gradient was large,
    # summed over the steps (MACO's transparency): where the clip holds the unit's evidence
    alpha: dict[str, np.ndarray]


class Cancelled(Exception):
    """The caller's cancel event was set; the optimisation stopped between two steps."""


def _batch_items(
    units: int | Sequence[int], settings: VisualizationSettings | Sequence[VisualizationSettings]
) -> tuple[list[int], list[VisualizationSettings]]:
    """Broadcast units and settings to one list each of the batch's length."""
    unit_list = [units] if isinstance(units, int) else list(units)
    settings_list = [settings] if isinstance(settings, VisualizationSettings) else list(settings)
    batch = max(len(unit_list), len(settings_list))
    if not unit_list or not settings_list:
        raise ValueError("at least one unit and one settings object are needed")
    if batch > MAX_BATCH:
        raise ValueError(f"a batch of {batch} items exceeds the limit of {MAX_BATCH}")
    for name, values in (("units", unit_list), ("settings", settings_list)):
        if len(values) not in (1, batch):
            raise ValueError(f"{len(values)} {name} do not broadcast to a batch of {batch}")
    unit_list = unit_list * (batch // len(unit_list))
    settings_list = settings_list * (batch // len(settings_list))
    shared = settings_list[0].model_dump(exclude=PER_ITEM_FIELDS)
    if any(s.model_dump(exclude=PER_ITEM_FIELDS) != shared for s in settings_list[1:]):
        raise ValueError(f"the items of a batch may differ only in {sorted(PER_ITEM_FIELDS)}")
    return unit_list, settings_list


def _evidence_maps(evidence: dict[Stream, torch.Tensor]) -> dict[str, np.ndarray]:
    """Summed |gradient| (B, C, T, H, W) -> (B, T, H, W) in [0, 1], each item scaled by its 99th percentile."""
    out: dict[str, np.ndarray] = {}
    for stream, total in evidence.items():
        summed = total.sum(1).float()
        flat = summed.flatten(1)
        top = torch.quantile(flat, 0.99, dim=1).clamp(min=1e-12).view(-1, 1, 1, 1)
        out[stream] = (summed / top).clamp(max=1.0).cpu().numpy()
    return out


def build_objective(settings: VisualizationSettings, units: Sequence[int]) -> objectives.Objective:
    """The settings' objective for batch item b looking at ``units[b]``."""
    unit_objective = objectives.neuron(units) if settings.objective == "neuron" else objectives.channel(units)
    if settings.direction == "min":
        unit_objective = -unit_objective
    if settings.diversity > 0:
        return unit_objective + settings.diversity * objectives.diversity()
    return unit_objective


def _jitter(settings: VisualizationSettings, spec: InputSpec) -> SpacetimeJitter:
    t = settings.transforms
    return SpacetimeJitter(
        jitter_px=round(t.jitter * min(spec.height, spec.width)), zoom_range=t.zoom, time_shift=t.time_shift
    )


def _use_graphs(device: torch.device, graphs: bool | None) -> bool:
    """Whether steps replay a CUDA graph (:mod:`.graphs`): by default on CUDA devices."""
    if graphs and device.type != "cuda":
        raise ValueError("CUDA graphs need a CUDA device")
    return device.type == "cuda" if graphs is None else graphs


def _use_amp(device: torch.device, amp: bool | None) -> bool:
    """Whether the network runs under bf16 autocast (params, FFT and penalties stay float32): by
    default on GPUs that support it; ``amp=False`` keeps float32, ``amp=True`` insists."""
    if amp is None:
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    if amp and device.type != "cuda":
        raise ValueError("bf16 autocast is only used on CUDA devices")
    return amp


def _display_numpy(clip: torch.Tensor) -> np.ndarray:
    """(..., C, T, H, W) tensor -> float32 (..., T, H, W, C) numpy."""
    return clip.detach().to("cpu", torch.float32).movedim(-4, -1).numpy()


class LayerRunner:
    """Feeds model-space clips of the optimised streams to the truncated network."""

    def __init__(self, model: LoadedModel, layer: str, amp: bool | None):
        self.model = model
        self.amp = _use_amp(model.device, amp)
        self.partial = getattr(model.module, "partial_inputs", False)
        self.probe = LayerProbe(model.module, layer)

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``inputs``: the network's keyword arguments, one per stream."""
        if not self.partial:
            spec = self.model.spec
            batch = next(iter(inputs.values())).shape[0]
            constant: dict[str, torch.Tensor] = {  # a neutral input for the streams the layer does not depend on
                s: torch.zeros(batch, *spec.inputs[s].shape, device=self.model.device)
                for s in spec.streams
                if s not in inputs
            }
            inputs = {**inputs, **constant}
        # no cast cache: a CUDA graph must not record casts that a later call would skip
        with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False) if self.amp else nullcontext():
            output = self.probe(inputs)
        return output.float()

    def close(self) -> None:
        self.probe.close()


def adam(params: Iterable[ClipParam], lr: float, from_clip: bool) -> torch.optim.Adam:
    """Adam over the parameters of ``params``: phases (the spectrum basis's) at ``lr * PHASE_LR``, or
    ``lr * PHASE_LR_FROM_CLIP`` when they start from a real clip's."""
    named = [(name, p) for param in params for name, p in param.named_parameters()]
    phases = [p for name, p in named if name.endswith("phase")]
    others = [p for name, p in named if not name.endswith("phase")]
    phase_lr = lr * (PHASE_LR_FROM_CLIP if from_clip else PHASE_LR)
    groups = [{"params": others}] + ([{"params": phases, "lr": phase_lr}] if phases else [])
    return torch.optim.Adam(groups, lr=lr, fused=True)  # one kernel a step


@dataclass(frozen=True)
class StepTerms:
    """What a step adds up for a batch of B items: the transforms and views (one draw each), the
    objective over every view, and each item's penalty weights (B, 3) and pull towards its start
    clip (model space, and (B, 1, 1, 1, 1) weights per stream, :func:`start_pull`; streams without one
    are absent)."""

    jitter: SpacetimeJitter
    views: int
    objective: objectives.Objective
    penalty_weights: dict[Stream, torch.Tensor]
    start_targets: dict[Stream, torch.Tensor]
    start_weights: dict[Stream, torch.Tensor]


START_PULL_FLOOR = 0.01  # model-space mean square below which a start clip's stream counts as this much


def start_pull(weights: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, 1, 1, 1, 1): each item's pull towards its start clip ``targets`` (B, C, T, H, W, model space):
    its weight over the clip's own mean square there. So the pull asks the same *share* of change of each
    stream: a clip's flow is 10 to 800 times smaller in model space than its RGB (docs/engine.md),
    and one weight for both let the flow of an accentuated upload reverse while its RGB stayed. The floor
    keeps the pull of a nearly still clip's flow finite."""
    scale = targets.square().mean(dim=(1, 2, 3, 4)).clamp(min=START_PULL_FLOOR)
    return (weights / scale).view(-1, 1, 1, 1, 1)


def descend(
    runner: Callable[[Mapping[str, torch.Tensor]], torch.Tensor],
    terms: StepTerms,
    clips: dict[Stream, torch.Tensor],
    specs: dict[Stream, InputSpec],
    draw: Draw,
) -> tuple[torch.Tensor, dict[Stream, torch.Tensor]]:
    """The backward half of a step from the batch's display-space ``clips`` (B, C, T, H, W): forward
    through the transforms and the network, the objective, the penalties' closed-form gradients,
    one backward pass into the parameters (the caller zeroes their gradients before and steps Adam
    after). Returns the objective (B,) and its gradient per stream (the evidence)."""
    model_space = {s: specs[s].to_model(clip) for s, clip in clips.items()}
    # the network's part of the graph starts at detached model-space clips: its gradient there is the
    # objective's alone (the evidence maps), before the penalties' closed-form gradients join it
    seen_from = {s: x.detach().requires_grad_() for s, x in model_space.items()}
    views = terms.views
    # the transforms are linear and keep constants, so they commute with to_model
    seen: dict[str, torch.Tensor] = {  # the network's keyword inputs
        s: terms.jitter.apply(x.repeat_interleave(views, 0) if views > 1 else x, draw, is_flow=s == "motion")
        for s, x in seen_from.items()
    }
    value = terms.objective(runner(seen))
    if views > 1:
        value = value.view(-1, views).mean(1)
    objective_grads = dict(zip(seen_from, torch.autograd.grad(value.sum(), list(seen_from.values()))))
    grads = []
    for s, objective_grad in objective_grads.items():
        x = model_space[s].detach()
        grad = regularizers.penalty_gradient(x, terms.penalty_weights[s], vectors=s == "motion")
        grad.sub_(objective_grad)
        if s in terms.start_targets:
            grad.add_((x - terms.start_targets[s]) * (terms.start_weights[s] * (2 / grad[0].numel())))
        grads.append(grad)
    # one backward pass through the parameterisation: minus the objective's gradient plus the penalties'
    torch.autograd.backward(list(model_space.values()), grads)
    return value, objective_grads


def batch_key(
    model: LoadedModel, layer: str, settings: VisualizationSettings, has_start: bool
) -> tuple[object, ...] | None:
    """What optimisations that step together (:func:`step_together`) share: one model and layer,
    one objective and transforms, start clips all or none; everything else (unit, seed, weights,
    steps, learning rate, parameterisation, the start clip itself) is each one's own. None: it
    steps alone (a diversity objective compares the items of its own batch only)."""
    if settings.diversity > 0:
        return None
    shared = settings.model_dump(include={"objective", "direction", "transforms"})
    return (model.spec.id, model.weights_hash, layer, has_start, repr(shared))


class Optimisation:
    """The state of one optimisation of a batch of items that step together from the start: their
    parameters, Adam, every step's transform draws, penalty weights, start clips and evidence.
    ``visualize`` runs one to the end; a server steps many, alone or several at once
    (:func:`step_together`), and may stop stepping one between any two steps."""

    def __init__(
        self,
        model: LoadedModel,
        layer: str,
        units: int | Sequence[int],
        settings: VisualizationSettings | Sequence[VisualizationSettings],
        start: dict[Stream, np.ndarray] | None = None,
    ):
        info = model.layer(layer)
        unit_list, settings_list = _batch_items(units, settings)
        settings_list = [s.for_layer(layer, has_eigenclips(model), start is not None) for s in settings_list]
        if any(not 0 <= u < info.units for u in unit_list):
            raise ValueError(f"units {unit_list} out of range for layer {layer!r} with {info.units} units")
        first = settings_list[0]
        if first.diversity > 0 and first.transforms.views > 1:
            raise ValueError("diversity compares the items of a batch: use it with one view a step")
        device = model.device
        self.model, self.layer, self.units, self.settings = model, layer, unit_list, first
        self.streams = [s for s in info.inputs if s in model.spec.inputs]
        self.specs = specs = {s: model.spec.inputs[s] for s in self.streams}
        self.step = 0  # steps done
        self.steps = first.steps
        generators = [torch.Generator().manual_seed(s.seed) for s in settings_list]
        penalty_weights = {  # (B, 3): norm, tv_space, tv_time of each item
            s: torch.tensor(
                [[x.weights.norm, x.weights.tv_space, getattr(x.weights.tv_time, s)] for x in settings_list],
                device=device,
            )
            for s in self.streams
        }
        batch = len(unit_list)
        start_clips = _start_clips(start, self.streams, specs, batch, device)
        spectra = getattr(model, "spectra", None)
        self.params: dict[Stream, ClipParam] = {
            s: clip_param(
                first.param or "spectrum",  # param and freedom: filled in by for_layer; `or` for the type checker
                s, specs[s], generators, device, spectra, penalty_weights[s], start_clips.get(s), first.freedom or 1.0,
                eigenclips_of(model, s) if first.param == "pca" else None,
            )
            for s in self.streams
        }
        # the start clips in model space, and each item's pull towards them (closed-form gradient 2w(x - x0)/n)
        start_targets = {s: specs[s].to_model(clip) for s, clip in start_clips.items()}
        weights = torch.tensor([x.weights.start for x in settings_list], device=device)
        start_weights = {s: start_pull(weights, target) for s, target in start_targets.items()}
        views = first.transforms.views
        jitter = _jitter(first, specs[self.streams[0]])
        view_generators = [g for g in generators for _ in range(views)]  # item b's views draw from b's generator
        frames = max(spec.frames for spec in specs.values())
        self.draws = jitter.sample_steps(view_generators, frames, first.steps, device)
        objective = build_objective(first, [u for u in unit_list for _ in range(views)])  # of every view
        self.final_objective = build_objective(first, unit_list) if views > 1 else objective
        self.terms = StepTerms(jitter, views, objective, penalty_weights, start_targets, start_weights)
        self.evidence = {s: torch.zeros(batch, *specs[s].shape, device=device) for s in self.streams}
        self.optimizer = adam(self.params.values(), first.lr, from_clip=bool(start_clips))

    @property
    def batch(self) -> int:
        return len(self.units)

    @property
    def done(self) -> bool:
        return self.step >= self.steps

    def clips(self) -> dict[Stream, torch.Tensor]:
        """The current display-space clips (B, C, T, H, W), with their graph to the parameters."""
        return {s: self.params[s]() for s in self.streams}

    def advance(self, objective_grads: dict[Stream, torch.Tensor]) -> None:
        """After ``descend``: add the evidence and step Adam (on a GPU this may be replayed as a
        CUDA graph: nothing here runs Python state forward, :func:`step_together` counts the steps)."""
        for s, objective_grad in objective_grads.items():
            self.evidence[s].add_(objective_grad.abs())
        self.optimizer.step()

    def step_with(self, runner: LayerRunner, draw: Draw) -> StepOutput:
        """One optimisation step of every stream: forward, objective, penalties, backward, Adam."""
        self.optimizer.zero_grad(set_to_none=True)
        clips = self.clips()
        value, objective_grads = descend(runner, self.terms, clips, self.specs, draw)
        self.advance(objective_grads)
        return value.detach(), {s: clip.detach() for s, clip in clips.items()}

    def result(self, runner: LayerRunner) -> Visualization:
        """The finished clips, their objective (untransformed) and the evidence maps."""
        with torch.no_grad():
            final = self.clips()
            final_value = self.final_objective(runner({s: self.specs[s].to_model(final[s]) for s in self.streams}))
        return Visualization(
            inputs={s: _display_numpy(final[s]) for s in self.streams},
            objective=[float(v) for v in final_value],
            steps=self.steps,
            alpha=_evidence_maps(self.evidence),
        )


def step_together(runner: LayerRunner, optimisations: Sequence[Optimisation]) -> list[StepOutput]:
    """One step of each optimisation (equal ``batch_key``s, none done) in one forward and backward
    pass through the network: the batch of all their items. Each keeps its own parameters, Adam,
    draws and penalties, so one alone is exactly :meth:`Optimisation.step_with`; together, the
    network's batched kernels round differently from one item's (docs/benchmarks.md)."""
    if len(optimisations) == 1:
        alone = optimisations[0]
        output = alone.step_with(runner, alone.draws[alone.step])
        alone.step += 1
        return [output]
    first = optimisations[0]
    for optimisation in optimisations:
        optimisation.optimizer.zero_grad(set_to_none=True)
    parts = _clips_together(optimisations)
    clips = {s: torch.cat([part[s] for part in parts]) for s in first.streams}
    draws = [optimisation.draws[optimisation.step] for optimisation in optimisations]
    draw = Draw(*(torch.cat([getattr(d, name) for d in draws]) for name in ("shift_xy", "zoom", "shift_t")))
    units = [u for optimisation in optimisations for u in optimisation.units for _ in range(first.terms.views)]
    terms = StepTerms(
        first.terms.jitter,
        first.terms.views,
        build_objective(first.settings, units),
        {s: torch.cat([o.terms.penalty_weights[s] for o in optimisations]) for s in first.streams},
        {s: torch.cat([o.terms.start_targets[s] for o in optimisations]) for s in first.terms.start_targets},
        {s: torch.cat([o.terms.start_weights[s] for o in optimisations]) for s in first.terms.start_targets},
    )
    value, objective_grads = descend(runner, terms, clips, first.specs, draw)
    outputs: list[StepOutput] = []
    offset = 0
    for optimisation, part in zip(optimisations, parts):
        items = slice(offset, offset + optimisation.batch)
        offset = items.stop
        optimisation.advance({s: grad[items] for s, grad in objective_grads.items()})
        optimisation.step += 1
        outputs.append((value[items].detach(), {s: clip.detach() for s, clip in part.items()}))
    return outputs


def _clips_together(optimisations: Sequence[Optimisation]) -> list[dict[Stream, torch.Tensor]]:
    """Each optimisation's :meth:`Optimisation.clips`; those of eigenclip bases of the same components
    come from one product (EigenclipBasis.together), the others each from its own basis."""
    parts: list[dict[Stream, torch.Tensor]] = [{} for _ in optimisations]
    for stream in optimisations[0].streams:
        params = [optimisation.params[stream] for optimisation in optimisations]
        # by the components' identity: the model's eigenclips of the stream
        sharing: dict[int, list[tuple[int, EigenclipBasis]]] = {}
        for index, param in enumerate(params):
            if isinstance(param.basis, EigenclipBasis):
                sharing.setdefault(id(param.basis.components), []).append((index, param.basis))
        for members in (m for m in sharing.values() if len(m) > 1):
            signals = EigenclipBasis.together([basis for _, basis in members])
            for (index, _), signal in zip(members, signals):
                parts[index][stream] = params[index].display(signal)
        for index, param in enumerate(params):
            if stream not in parts[index]:
                parts[index][stream] = param()
    return parts


def visualize(
    model: LoadedModel,
    layer: str,
    units: int | Sequence[int],
    settings: VisualizationSettings | Sequence[VisualizationSettings],
    *,
    progress: Callable[[Progress], None] | None = None,
    progress_every: int = 1,
    cancel: threading.Event | None = None,
    amp: bool | None = None,
    graphs: bool | None = None,
    start: dict[Stream, np.ndarray] | None = None,
) -> Visualization:
    """Optimise the inputs that drive ``units`` of ``layer``.

    ``units`` and ``settings`` broadcast to a batch (several units, several seeds or several
    regulariser weights of one layer); the items may differ only in seed and weights.
    Only the streams the layer depends on are optimised and returned. ``amp``: bf16 autocast of
    the network, by default where the GPU supports it (see :func:`_use_amp`); ``graphs``: replay
    the step as a CUDA graph, by default on CUDA devices (see :mod:`.graphs`). ``start``: a real
    clip per stream, display space (T, H, W, C), that every item starts from and is pulled back
    to with ``weights.start`` (feature accentuation: what in this clip drives the unit).
    """
    if progress_every < 1:
        raise ValueError("progress_every must be at least 1")
    optimisation = Optimisation(model, layer, units, settings, start)
    use_graphs = _use_graphs(model.device, graphs)
    with model.lock:
        runner = LayerRunner(model, layer, amp)
        try:
            step = partial(optimisation.step_with, runner)
            steps = run_steps(step, optimisation.draws, optimisation.optimizer, graph=use_graphs)
            for index in range(1, optimisation.steps + 1):
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"cancelled before step {index}")
                value, clips = next(steps)
                if progress is not None and (index % progress_every == 0 or index == optimisation.steps):
                    progress(Progress(index, optimisation.steps, value, clips))
            return optimisation.result(runner)
        finally:
            runner.close()


def _start_clips(
    start: dict[Stream, np.ndarray] | None, streams: Sequence[Stream], specs: dict[Stream, InputSpec], batch: int,
    device: torch.device,
) -> dict[Stream, torch.Tensor]:
    """The start clips as (B, C, T, H, W) display-space tensors, checked against the model's inputs."""
    if start is None:
        return {}
    missing = [s for s in streams if s not in start]
    if missing:
        raise ValueError(f"the start clip lacks the {' and '.join(missing)} stream the layer needs")
    out = {}
    for s in streams:
        clip = np.asarray(start[s], dtype=np.float32)
        expected = (specs[s].frames, specs[s].height, specs[s].width, specs[s].channels)
        if clip.shape != expected:
            raise ValueError(f"the start clip's {s} stream is {clip.shape}, the model needs {expected}")
        if not np.isfinite(clip).all():
            raise ValueError(f"the start clip's {s} stream has values that are not finite")
        out[s] = torch.from_numpy(clip).permute(3, 0, 1, 2).unsqueeze(0).expand(batch, -1, -1, -1, -1).to(device)
    return out
