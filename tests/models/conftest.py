"""Fixtures and helpers for the model zoo tests: an empty checkpoint cache, gradient dependence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from stlens.models.introspect import candidate_layers
from stlens.models.spec import LOGITS, ModelSpec, Stream

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own empty checkpoint cache, so none sees a user's downloads."""
    folder = tmp_path / "stlens-cache"
    monkeypatch.setenv("STLENS_CACHE_DIR", str(folder))
    torch.set_num_threads(1)
    yield folder


def gradient_dependence(module: nn.Module, spec: ModelSpec) -> dict[str, set[Stream]]:
    """For each layer (and the logits), the inputs whose gradient through that layer is non-zero.

    Independent of the autograd-graph reachability that ``discover_layers`` uses: here the
    gradient of each layer's summed output is computed and tested for non-zero values.
    """
    inputs = {s: torch.randn(1, *spec.inputs[s].shape, requires_grad=True) for s in spec.streams}
    outputs: dict[str, torch.Tensor] = {}
    modules = dict(module.named_modules())
    handles = []
    for name in candidate_layers(module):

        def hook(_m: nn.Module, _i: object, out: object, name: str = name) -> None:
            outputs[name] = out[0] if isinstance(out, tuple) else out  # type: ignore[assignment]

        handles.append(modules[name].register_forward_hook(hook))
    try:
        outputs[LOGITS] = module.eval()(**{s: spec.inputs[s].to_model(x) for s, x in inputs.items()})
    finally:
        for h in handles:
            h.remove()
    streams = list(inputs)
    found: dict[str, set[Stream]] = {}
    for name, out in outputs.items():
        grads = torch.autograd.grad(
            out.double().sum(), [inputs[s] for s in streams], retain_graph=True, allow_unused=True
        )
        found[name] = {s for s, g in zip(streams, grads, strict=True) if g is not None and bool(g.abs().sum() > 0)}
    return found
