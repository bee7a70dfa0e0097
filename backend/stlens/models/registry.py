"""The models the server knows: built in or from model files, loaded lazily, a bounded number resident."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .introspect import discover_layers
from .spec import LayerInfo, ModelSpec, Stream
from .spectra import NaturalSpectra, default_spectra

NaturalClips = dict[Stream, np.ndarray]
"""Real clips per stream (N, T, H, W, C), as stlens.models.spectra.measure_spectra takes them: RGB uint8,
flow float32 pixels."""


@dataclass(frozen=True)
class NaturalClipSource:
    """Where a model's real training clips come from (engine param "pca" takes their principal components)."""

    name: str  # the same clips in every process under this name: it names what the engine stores of them
    load: Callable[[], NaturalClips]


@dataclass(frozen=True)
class ModelEntry:
    """How to make a model: its spec and a builder returning the module with its weights loaded."""

    spec: ModelSpec
    build: Callable[[], nn.Module]
    description: str = ""
    card: Mapping[str, Any] | None = None  # how its weights were made (training command, accuracy), where known
    # the natural spectra of its inputs (engine param "spectrum"); None: the natural-video power law
    # where the inputs are RGB and flow (spectra.default_spectra), a callable returning None: none
    spectra: Callable[[], NaturalSpectra | None] | None = None
    # real training clips of its inputs (engine param "pca" takes their principal components); None: none
    natural_clips: NaturalClipSource | None = None


@dataclass
class LoadedModel:
    """A model ready for the engine: in eval mode, parameters frozen, on its device."""

    spec: ModelSpec
    module: nn.Module
    layers: list[LayerInfo]
    weights_hash: str
    device: torch.device
    spectra: NaturalSpectra | None = None
    natural_clips: NaturalClipSource | None = None  # ModelEntry's, loaded on the engine's first use
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def layer(self, layer_id: str) -> LayerInfo:
        for layer in self.layers:
            if layer.id == layer_id:
                return layer
        raise KeyError(layer_id)


def weights_hash(module: nn.Module) -> str:
    """A content hash of the state dict: names, shapes, dtypes and values."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        digest.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return digest.hexdigest()


def prepare(entry: ModelEntry, device: torch.device) -> LoadedModel:
    module = entry.build().eval()
    for p in module.parameters():
        p.requires_grad_(False)
    digest = weights_hash(module)
    module = module.to(device)
    if device.type == "cuda":
        # a visualisation repeats one input shape for hundreds of steps: let cuDNN time its
        # algorithms once per shape (I3D's bf16 3D convs otherwise fall back to slow generic kernels)
        torch.backends.cudnn.benchmark = True
    layers = discover_layers(module, entry.spec, device)
    spectra = entry.spectra() if entry.spectra is not None else default_spectra(entry.spec.inputs)
    return LoadedModel(
        spec=entry.spec, module=module, layers=layers, weights_hash=digest, device=device, spectra=spectra,
        natural_clips=entry.natural_clips,
    )


class ModelRegistry:
    """Known models by id; ``get`` loads on first use and keeps at most ``max_resident`` loaded."""

    def __init__(self, entries: list[ModelEntry], device: torch.device, max_resident: int = 4):
        self._entries: dict[str, ModelEntry] = {}
        for e in entries:
            if e.spec.id in self._entries:
                raise ValueError(f"two models share the id {e.spec.id!r}")
            self._entries[e.spec.id] = e
        self.device = device
        self.max_resident = max(1, max_resident)
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()  # guards _loaded and _loading; never held while a model builds
        self._loading: dict[str, threading.Lock] = {}  # model id -> held while that model builds

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def entry(self, model_id: str) -> ModelEntry:
        return self._entries[model_id]

    def __contains__(self, model_id: str) -> bool:
        return model_id in self._entries

    def get(self, model_id: str) -> LoadedModel:
        """The loaded model (KeyError for an unknown id).

        A model is built once, under its own lock: while one model loads (seconds, for a big
        one), the models already resident are handed out as before."""
        entry = self._entries[model_id]
        with self._lock:
            if (resident := self._resident(model_id)) is not None:
                return resident
            loading = self._loading.setdefault(model_id, threading.Lock())
        with loading:
            with self._lock:
                if (resident := self._resident(model_id)) is not None:  # built while this thread waited
                    return resident
            try:
                loaded = prepare(entry, self.device)
            except BaseException:
                with self._lock:
                    self._loading.pop(model_id, None)  # the next caller tries again
                raise
            with self._lock:
                self._loaded[model_id] = loaded
                self._loading.pop(model_id, None)
                self._evict()
            return loaded

    def _resident(self, model_id: str) -> LoadedModel | None:
        """The model if it is loaded, now the most recently used (hold ``_lock``)."""
        loaded = self._loaded.get(model_id)
        if loaded is not None:
            self._loaded.move_to_end(model_id)
        return loaded

    def _evict(self) -> None:
        """Drop the least recently used models past ``max_resident`` (hold ``_lock``)."""
        while len(self._loaded) > self.max_resident:
            self._loaded.popitem(last=False)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()  # give the evicted model's memory back to other processes

    def resident(self) -> list[str]:
        """Ids of the loaded models, least recently used first."""
        with self._lock:
            return list(self._loaded)
