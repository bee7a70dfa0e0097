"""Find a model's layers by a dry run, and run a model only as far as one layer.

A layer's stream is read off the autograd graph of the dry run: a layer reached from the RGB
input only is ``appearance``, from the flow input only ``motion``, from both ``fusion``. This
needs no naming convention and is exact (graph reachability, not a numeric gradient). The same
run counts the floating-point operations done by the time each layer's output exists (what a
forward pass cut at that layer costs), from which a step's cost is estimated (``step_cost.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .spec import LOGITS, STREAMS, LayerInfo, ModelSpec, Stream

LAYER_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def candidate_layers(module: nn.Module) -> list[str]:
    """Names of the modules that count as layers: ``module.stlens_layers`` if the model
    declares them (e.g. post-activation blocks), else every named conv and linear module."""
    declared = getattr(module, "stlens_layers", None)
    if declared is not None:
        return list(declared)
    return [name for name, m in module.named_modules() if name and isinstance(m, LAYER_TYPES)]


def _first_tensor(output: object) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"layer output of type {type(output).__name__} is not a tensor")


def _input_dependence(roots: list[torch.Tensor], leaves: Mapping[Stream, torch.Tensor]) -> list[frozenset[Stream]]:
    """For each root tensor, the set of leaf inputs its autograd graph reaches (memoised DFS).

    The memo is keyed by ``id`` of autograd nodes' Python wrappers, which are created on demand
    and may be freed; every visited node is kept alive until the end, so no id is reused for
    another node (that made a GPU run see a fusion layer as appearance-only)."""
    leaf_ids = {id(t): s for s, t in leaves.items()}
    memo: dict[int, frozenset[Stream]] = {}
    visited: list[object] = []  # keeps the wrappers behind memo's keys alive

    def reach(fn: object) -> frozenset[Stream]:
        stack = [(fn, False)]
        while stack:
            node, expanded = stack.pop()
            if node is None or id(node) in memo:
                continue
            children = [c for c, _ in getattr(node, "next_functions", ()) if c is not None]
            if not expanded:
                stack.append((node, True))
                stack.extend((c, False) for c in children if id(c) not in memo)
                continue
            found: set[Stream] = set()
            variable = getattr(node, "variable", None)
            if variable is not None and id(variable) in leaf_ids:
                found.add(leaf_ids[id(variable)])
            for c in children:
                found |= memo.get(id(c), frozenset())
            memo[id(node)] = frozenset(found)
            visited.append(node)
        return memo.get(id(fn), frozenset()) if fn is not None else frozenset()

    return [reach(r.grad_fn) for r in roots]


def discover_layers(module: nn.Module, spec: ModelSpec, device: torch.device | str = "cpu") -> list[LayerInfo]:
    """Dry-run ``module`` at the declared input sizes and list its layers in forward order."""
    generator = torch.Generator().manual_seed(0)  # its own: another thread's seeded build draws from the global one
    inputs = {
        s: torch.randn(1, *spec.inputs[s].shape, generator=generator).to(device).requires_grad_()
        for s in spec.streams
    }
    names = candidate_layers(module)
    by_name = dict(module.named_modules())
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"declared layers not found in the module: {missing}")
    outputs: dict[str, torch.Tensor] = {}
    order: list[str] = []
    flops: dict[str, int] = {}
    counter = FlopCounterMode(display=False)

    def recorder(name: str):
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            if name not in outputs:
                outputs[name] = _first_tensor(out)
                order.append(name)
                flops[name] = int(counter.get_total_flops())

        return hook

    handles = [by_name[n].register_forward_hook(recorder(n)) for n in names]
    try:
        with torch.enable_grad(), counter:
            logits = module(**{s: spec.inputs[s].to_model(x) for s, x in inputs.items()})
    finally:
        for h in handles:
            h.remove()
    flops[LOGITS] = int(counter.get_total_flops())
    if logits.ndim != 2 or logits.shape[1] != spec.num_classes:
        raise ValueError(
            f"the model returned logits of shape {tuple(logits.shape)}; expected (N, {spec.num_classes})"
        )
    order = [n for n in order if n != LOGITS] + [LOGITS]
    outputs[LOGITS] = logits
    deps = _input_dependence([outputs[n] for n in order], inputs)
    layers = []
    for name, dep in zip(order, deps):
        if not dep:
            continue  # a layer that no input reaches (e.g. a constant) cannot be visualised
        stream = "fusion" if len(dep) == len(STREAMS) else next(iter(dep))
        out = outputs[name]
        layers.append(
            LayerInfo(
                id=name, stream=stream, units=int(out.shape[1]), shape=tuple(out.shape[1:]), forward_flops=flops[name]
            )
        )
    return layers


class _ReachedLayer(Exception):
    """Raised by a forward hook to stop the forward pass at the target layer."""


class LayerProbe:
    """Runs a model up to one layer and returns that layer's output.

    The forward pass is cut at the target by raising from its forward hook, so nothing after the
    layer is computed: an early layer costs proportionally less than the logits.
    """

    def __init__(self, module: nn.Module, layer: str):
        self.module = module
        self.layer = layer
        self._output: torch.Tensor | None = None
        self._handle = None
        if layer != LOGITS:
            target = dict(module.named_modules()).get(layer)
            if target is None:
                raise KeyError(f"no layer {layer!r} in the model")
            self._handle = target.register_forward_hook(self._capture)

    def _capture(self, _m: nn.Module, _i: object, out: object) -> None:
        self._output = _first_tensor(out)
        raise _ReachedLayer

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self._handle is None:
            return self.module(**inputs)
        self._output = None
        try:
            self.module(**inputs)
        except _ReachedLayer:
            pass
        if self._output is None:
            raise RuntimeError(f"the forward pass never reached layer {self.layer!r}")
        out, self._output = self._output, None
        return out

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


@contextmanager
def recorded_outputs(module: nn.Module, names: Iterable[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Inside the block, the dict holds the output of each named submodule from the latest forward
    pass (nothing for one the pass did not reach); the hooks are gone afterwards."""
    modules = dict(module.named_modules())
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            outputs[name] = _first_tensor(out)

        return hook

    handles = [modules[name].register_forward_hook(keep(name)) for name in names]
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()


@contextmanager
def probe(module: nn.Module, layer: str) -> Iterator[LayerProbe]:
    p = LayerProbe(module, layer)
    try:
        yield p
    finally:
        p.close()
