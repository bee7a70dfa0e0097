"""Model files (the CONTRACT's "bring your own model"): a TOML file with one ``[[models]]`` table a model.

Everything a file says is checked when it is loaded, so a mistake is reported once, at
``stlens serve --models``, with the file and the model it is in: unknown keys, a factory that
cannot be imported or is not callable, a checkpoint that does not match the module (strict),
inputs the module cannot run on, logits of the wrong shape, stream prefixes that contradict
what the layers depend on, a checkpoint that is not a plain state dict. Every error is one line,
so ``stlens serve`` exits 2 with it and no traceback.

Paths are relative to the TOML file, whose folder is also put on ``sys.path`` so a factory may
live beside it; they must stay inside that folder (``..`` and links out of it are refused), so a
model file cannot make the server read and serve another file's lines. An absolute path is
accepted only when the file says ``allow_absolute_paths = true`` at its top.
"""

from __future__ import annotations

import importlib
import pickle
import re
import sys
import tomllib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from .downloads import load_state_dict
from .introspect import discover_layers
from .natural_clips import check_clips_file, clips_file_source
from .registry import ModelEntry, NaturalClipSource
from .spec import FlowMethod, InputSpec, LayerInfo, ModelSpec, Stream
from .spectra import NaturalSpectra, check_spectra, load_spectra

MAX_MODELS = 64
MAX_CLASSES = 100_000
MAX_FILE_BYTES = 1 << 20
MAX_LABELS_BYTES = 8 << 20
MAX_MESSAGE_CHARS = 600
UNSAFE_GLOBAL = re.compile(r"unsupported GLOBAL (\S+)|Unsupported global: GLOBAL (\S+)", re.IGNORECASE)


class ModelFileError(ValueError):
    """A model file that cannot be used; the message names the file, the model and the fix.

    The message is always one line (whitespace folded, at most ``MAX_MESSAGE_CHARS``): it is
    what ``stlens serve`` prints before it exits 2.
    """

    def __init__(self, message: str):
        line = " ".join(str(message).split())
        if len(line) > MAX_MESSAGE_CHARS:
            line = line[: MAX_MESSAGE_CHARS - 3] + "..."
        super().__init__(line)


class StreamPrefixes(BaseModel):
    """Module-name prefixes of each stream's layers; checked against what the layers depend on."""

    model_config = ConfigDict(extra="forbid")

    appearance: str | None = None
    motion: str | None = None
    fusion: str | None = None


class ModelFileModel(BaseModel):
    """One ``[[models]]`` table."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    factory: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description="module.path:callable")
    factory_kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the factory")
    checkpoint: str | None = None
    labels: str | None = None
    num_classes: int | None = Field(default=None, ge=1, le=MAX_CLASSES)
    description: str = ""
    inputs: dict[Stream, InputSpec] = Field(min_length=1)
    flow: FlowMethod = Field(default="dis", description="the optical flow the motion stream was trained on")
    streams: StreamPrefixes = Field(default_factory=StreamPrefixes)
    spectra: str = Field(
        default="power-law",
        description="natural spectra for the spectrum parameterisation: 'power-law' (fitted to real footage), "
        "'none', or a spectra file (.npz, as stlens train --spectra-only writes)",
    )
    natural_clips: str | None = Field(
        default=None,
        description="a clips file (.npz of real clips at the input sizes, as stlens natural-clips writes): its "
        "principal components make the class pictures (param 'pca', then the default at the logits)",
    )


class ModelFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_absolute_paths: bool = Field(
        default=False, description="accept absolute checkpoint and labels paths (relative ones stay inside the folder)"
    )
    models: list[ModelFileModel] = Field(min_length=1, max_length=MAX_MODELS)


def import_factory(reference: str) -> Callable[..., Any]:
    """``"package.module:name"`` -> the callable, with an error that says which part is missing."""
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelFileError(f"factory {reference!r}: cannot import module {module_name!r} ({exc})") from exc
    factory = getattr(module, attribute, None)
    if factory is None:
        raise ModelFileError(f"factory {reference!r}: module {module_name!r} has no {attribute!r}")
    if not callable(factory):
        raise ModelFileError(f"factory {reference!r}: {attribute!r} is a {type(factory).__name__}, not callable")
    return factory


def build_module(factory: str, factory_kwargs: dict[str, Any], checkpoint: Path | None) -> nn.Module:
    """Call the factory and load the checkpoint strictly (``torch.load(weights_only=True)``)."""
    try:
        module = import_factory(factory)(**factory_kwargs)
    except ModelFileError:
        raise
    except Exception as exc:  # the factory is the user's code: any failure is reported as theirs
        raise ModelFileError(f"factory {factory!r} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, nn.Module):
        raise ModelFileError(f"factory {factory!r} returned a {type(module).__name__}, not a torch.nn.Module")
    if checkpoint is not None:
        state = read_checkpoint(checkpoint)
        try:
            module.load_state_dict(state, strict=True)
        except (RuntimeError, ValueError) as exc:
            raise ModelFileError(
                f"checkpoint {checkpoint} does not match the module built by {factory!r}: {exc}"
            ) from exc
    return module


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict; whatever the file holds instead (pickled code, text, a torn
    archive, nothing) is a ModelFileError that says what was found."""
    try:
        return load_state_dict(path)
    except pickle.UnpicklingError as exc:
        found = UNSAFE_GLOBAL.search(str(exc))
        what = f"refers to {next(g for g in found.groups() if g)}" if found else "holds pickled objects"
        raise ModelFileError(
            f"checkpoint {path} {what}, not only tensors: torch.load(weights_only=True) refused it; "
            "save a state dict (torch.save(module.state_dict(), path))"
        ) from None
    except OSError as exc:
        raise ModelFileError(f"checkpoint {path} cannot be read: {exc.strerror or exc}") from None
    except Exception as exc:  # any other failure of torch.load means the file is not a checkpoint
        reason = str(exc).split("\n", 1)[0] or type(exc).__name__
        raise ModelFileError(
            f"checkpoint {path} is not a torch state dict file ({type(exc).__name__}: {reason}); "
            "save one with torch.save(module.state_dict(), path)"
        ) from None


def resolve_path(base: Path, given: str, what: str, *, allow_absolute: bool) -> Path:
    """``given`` (relative to the model file's folder ``base``) as an existing file inside ``base``,
    or an absolute path where the file allows them; links are followed before the check."""
    if "\0" in given:
        raise ModelFileError(f"{what} path {given!r} holds a NUL character")
    written = Path(given)
    if written.is_absolute():
        if not allow_absolute:
            raise ModelFileError(
                f"{what} path {given!r} is absolute; write it relative to the model file's folder, "
                "or set allow_absolute_paths = true at the top of the model file"
            )
        path = written.resolve()
    else:
        folder = base.resolve()
        path = (folder / written).resolve()
        if not path.is_relative_to(folder):
            raise ModelFileError(
                f"{what} path {given!r} leads outside the model file's folder {folder} ({path}); "
                "paths stay inside it unless they are absolute and allow_absolute_paths = true"
            )
    if not path.is_file():
        raise ModelFileError(f"{what} file {path} does not exist (paths are relative to the model file)")
    return path


def _read_labels(path: Path) -> tuple[str, ...]:
    if path.stat().st_size > MAX_LABELS_BYTES:
        raise ModelFileError(f"labels file {path} is over {MAX_LABELS_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ModelFileError(f"labels file {path} is not UTF-8 text (one class name a line)") from None
    except OSError as exc:
        raise ModelFileError(f"labels file {path} cannot be read: {exc.strerror or exc}") from None
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not labels or len(labels) > MAX_CLASSES:
        raise ModelFileError(f"labels file {path} must hold 1 to {MAX_CLASSES} class names, one a line")
    return labels


def _count_classes(module: nn.Module, inputs: dict[Stream, InputSpec]) -> int:
    with torch.no_grad():
        logits = module.eval()(**{s: torch.zeros(1, *spec.shape) for s, spec in inputs.items()})
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ValueError(f"the module must return logits (N, K), got {getattr(logits, 'shape', type(logits))}")
    return int(logits.shape[1])


def check_stream_prefixes(layers: list[LayerInfo], prefixes: StreamPrefixes) -> None:
    """A layer under the appearance (motion) prefix must depend on the RGB (flow) input only."""
    for stream in ("appearance", "motion"):
        prefix = getattr(prefixes, stream)
        if prefix is None:
            continue
        for layer in layers:
            if layer.id.startswith(prefix) and layer.stream != stream:
                found = "both inputs" if layer.stream == "fusion" else f"the {layer.stream} input only"
                raise ModelFileError(
                    f"layer {layer.id!r} is under the {stream} prefix {prefix!r} but depends on {found}"
                )


def _entry(model: ModelFileModel, base: Path, allow_absolute: bool) -> ModelEntry:
    resolve = partial(resolve_path, base, allow_absolute=allow_absolute)
    checkpoint = resolve(model.checkpoint, "checkpoint") if model.checkpoint else None
    labels = _read_labels(resolve(model.labels, "labels")) if model.labels else None
    if labels and model.num_classes is not None and model.num_classes != len(labels):
        raise ModelFileError(f"num_classes is {model.num_classes} but the labels file has {len(labels)} names")
    build = partial(build_module, model.factory, model.factory_kwargs, checkpoint)
    module = build().eval()
    try:
        num_classes = len(labels) if labels else model.num_classes or _count_classes(module, model.inputs)
    except Exception as exc:  # the module's forward is the user's code: any failure is reported as theirs
        raise ModelFileError(f"the module does not run on the declared inputs: {exc}") from exc
    spec = ModelSpec(
        id=model.id,
        title=model.title,
        inputs=model.inputs,
        flow=model.flow,
        labels=labels or tuple(f"class {i}" for i in range(num_classes)),
    )
    try:
        layers = discover_layers(module, spec)
    except Exception as exc:  # likewise
        raise ModelFileError(f"a dry run at the declared input sizes failed: {exc}") from exc
    check_stream_prefixes(layers, model.streams)
    return ModelEntry(
        spec=spec, build=build, description=model.description, spectra=_spectra(model, resolve),
        natural_clips=_natural_clips(model, resolve),
    )


def _spectra(model: ModelFileModel, resolve: Callable[[str, str], Path]) -> Callable[[], NaturalSpectra | None] | None:
    """What the model file says of the model's natural spectra, checked against its inputs now."""
    if model.spectra == "power-law":
        return None
    if model.spectra == "none":
        return lambda: None
    path = resolve(model.spectra, "spectra")
    try:
        spectra = load_spectra(path)
        check_spectra(spectra, model.inputs)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFileError(f"the spectra file {path.name} cannot be used: {exc}") from exc
    return lambda: spectra


def _natural_clips(model: ModelFileModel, resolve: Callable[[str, str], Path]) -> NaturalClipSource | None:
    """The model's clips file, checked against its inputs now (from the arrays' headers)."""
    if model.natural_clips is None:
        return None
    if model.spectra == "none":
        raise ModelFileError("natural_clips needs natural spectra (their colour): drop spectra = 'none'")
    path = resolve(model.natural_clips, "natural_clips")
    try:
        check_clips_file(path, model.inputs)
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"the clips file {path.name} cannot be used: {exc}") from exc
    return clips_file_source(path, model.id, model.inputs)


def load_model_file(path: Path | str) -> list[ModelEntry]:
    """The models of a model file, each built once and dry-run to check it; raises ModelFileError."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ModelFileError(f"model file {path} is over {MAX_FILE_BYTES} bytes")
    try:
        parsed = ModelFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except UnicodeDecodeError:
        raise ModelFileError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ModelFileError(f"model file {path} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelFileError(f"{path}: not valid TOML: {exc}") from exc
    except ValidationError as exc:
        raise ModelFileError(f"{path}: {_describe(exc)}") from exc
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    entries: list[ModelEntry] = []
    for index, model in enumerate(parsed.models):
        if any(e.spec.id == model.id for e in entries):
            raise ModelFileError(f"{path}: two models share the id {model.id!r}")
        try:
            entries.append(_entry(model, path.parent, parsed.allow_absolute_paths))
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: model {index + 1} ({model.id!r}): {exc}") from exc
        except ValidationError as exc:
            raise ModelFileError(f"{path}: model {index + 1} ({model.id!r}): {_describe(exc)}") from exc
    return entries


def _describe(error: ValidationError) -> str:
    """Pydantic's errors as ``where: what`` lines, e.g. ``models.0.inputs.appearance.chanels: extra ...``."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
