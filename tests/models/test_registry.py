"""The registry builds a model on first use and keeps at most ``max_resident`` loaded (LRU)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import nn

from stlens.models.registry import ModelEntry, ModelRegistry
from stlens.models.spec import InputSpec, ModelSpec


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, appearance: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(appearance).mean(dim=(2, 3, 4)))


def entries(builds: Counter[str], ids: list[str]) -> list[ModelEntry]:
    def build(model_id: str) -> nn.Module:
        builds[model_id] += 1
        return Tiny()

    inputs = {"appearance": InputSpec(channels=3, frames=2, height=8, width=8)}
    return [
        ModelEntry(spec=ModelSpec(id=i, title=i, inputs=inputs, labels=("a", "b")), build=lambda i=i: build(i))
        for i in ids
    ]


def test_models_are_built_lazily_and_evicted_least_recently_used_first() -> None:
    builds: Counter[str] = Counter()
    registry = ModelRegistry(entries(builds, ["a", "b", "c"]), torch.device("cpu"), max_resident=2)
    assert not builds and registry.resident() == []
    first = registry.get("a")
    assert registry.get("a") is first and builds["a"] == 1
    registry.get("b")
    registry.get("a")  # a is now the most recently used
    registry.get("c")
    assert registry.resident() == ["a", "c"]
    registry.get("b")
    assert builds == Counter({"a": 1, "b": 2, "c": 1})
    assert [layer.id for layer in first.layers] == ["conv", "fc", "logits"]
    assert not any(p.requires_grad for p in first.module.parameters()) and not first.module.training


def test_ids_are_unique_and_unknown_ids_are_key_errors() -> None:
    with pytest.raises(ValueError, match="share the id"):
        ModelRegistry(entries(Counter(), ["a", "a"]), torch.device("cpu"))
    with pytest.raises(KeyError):
        ModelRegistry(entries(Counter(), ["a"]), torch.device("cpu")).get("b")


def test_a_slow_load_blocks_neither_resident_models_nor_other_loads_and_builds_once() -> None:
    builds: Counter[str] = Counter()
    release = threading.Event()
    building = threading.Event()
    fast = entries(builds, ["a", "b"])

    def slow_build() -> nn.Module:
        builds["slow"] += 1
        building.set()
        assert release.wait(timeout=30)
        return Tiny()

    slow = ModelEntry(spec=fast[0].spec.model_copy(update={"id": "slow"}), build=slow_build)
    registry = ModelRegistry([*fast, slow], torch.device("cpu"), max_resident=3)
    resident = registry.get("a")
    with ThreadPoolExecutor(max_workers=4) as pool:
        try:
            loads = [pool.submit(registry.get, "slow") for _ in range(2)]
            assert building.wait(timeout=30)
            assert pool.submit(registry.get, "a").result(timeout=10) is resident  # while "slow" is loading
            pool.submit(registry.get, "b").result(timeout=10)  # another model loads meanwhile too
            assert not any(load.done() for load in loads)
        finally:
            release.set()
        first, second = (load.result(timeout=30) for load in loads)
    assert first is second and builds["slow"] == 1
    assert registry.resident() == ["a", "b", "slow"]
