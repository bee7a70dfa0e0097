"""The models a server or a worker offers, and the registry over them: built in, the zoo, then
a model file's. ``stlens serve`` and ``stlens worker`` build theirs here, so both compute the
same content ids from the same settings."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from .builtin import builtin_entries
from .modelfile import load_model_file
from .registry import ModelEntry, ModelRegistry
from .zoo import zoo_entries


class CatalogueSettings(Protocol):
    """What the catalogue reads of the settings (``stlens.config.ServerSettings`` has it)."""

    @property
    def models(self) -> Path | None: ...

    @property
    def include_heavy(self) -> bool: ...

    @property
    def max_resident_models(self) -> int: ...

    def torch_device(self) -> torch.device: ...


def model_entries(include_heavy: bool = False, model_file: Path | None = None) -> list[ModelEntry]:
    """The built-in models, the zoo, then those of the model file (ModelFileError if it is wrong)."""
    entries = builtin_entries() + zoo_entries(include_heavy)
    if model_file is not None:
        entries += load_model_file(model_file)
    return entries


def open_registry(settings: CatalogueSettings) -> ModelRegistry:
    """The registry of every model the settings offer, on their device; nothing is loaded yet.
    A wrong model file or device is a ValueError here, before anything starts."""
    entries = model_entries(settings.include_heavy, settings.models)
    return ModelRegistry(entries, settings.torch_device(), settings.max_resident_models)
