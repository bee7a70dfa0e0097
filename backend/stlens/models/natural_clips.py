"""Clips files: a model's own real clips, from which the engine takes the eigenclips of ``param: "pca"``.

A model file names one as ``natural_clips = "clips.npz"``: an ``.npz`` with one array a stream of the
model, ``appearance`` (N, T, H, W, 3) uint8 RGB and ``motion`` (N, T, H, W, 2) float16/32 flow in pixels,
at the model's input sizes, as the model saw them in training (``stlens natural-clips`` cuts them
from videos). The file is checked from its arrays' headers when the model file is loaded, and read
only when the eigenclips are first computed; its name in the eigenclip cache carries a digest of its
content, so a changed file is measured again on the next start (a file changed under a running
server is refused when it is read).
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .registry import NaturalClips, NaturalClipSource
from .spec import InputSpec, Stream

MIN_CLIPS = 16  # fewer give too few components to make a picture of
# values of one stream's clips at most: the engine holds them as float32 while it computes their components
MAX_VALUES = 400_000_000
DTYPES: dict[Stream, tuple[str, ...]] = {"appearance": ("uint8",), "motion": ("float16", "float32")}
# what reading a damaged, encrypted or oddly compressed .npz raises
DAMAGED = (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError, ValueError)


def _headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's shape and dtype, from the ``.npy`` headers inside the ``.npz`` (nothing decompressed
    beyond them)."""
    headers = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if not name.endswith(".npy"):
                continue
            with archive.open(name) as member:
                version = np.lib.format.read_magic(member)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(member)
            headers[name.removesuffix(".npy")] = (tuple(shape), dtype)
    return headers


def check_clips_file(path: Path, inputs: Mapping[Stream, InputSpec]) -> None:
    """ValueError, saying what is wrong, unless ``path`` holds clips of every stream of ``inputs`` at its
    size, in its dtype, at least MIN_CLIPS and at most MAX_VALUES values."""
    try:
        headers = _headers(path)
    except DAMAGED as exc:
        raise ValueError(f"not an .npz of arrays ({exc})") from exc
    for stream, spec in inputs.items():
        if stream not in headers:
            raise ValueError(f"it has no {stream!r} array (it has {sorted(headers) or 'none'})")
        shape, dtype = headers[stream]
        wanted = (spec.frames, spec.height, spec.width, spec.channels)
        if len(shape) != 5 or shape[1:] != wanted:
            raise ValueError(f"{stream!r} is {shape}; expected (N, {', '.join(map(str, wanted))}): (N, T, H, W, C)")
        if dtype.name not in DTYPES[stream]:
            raise ValueError(f"{stream!r} is {dtype.name}; expected {' or '.join(DTYPES[stream])}")
        if shape[0] < MIN_CLIPS:
            raise ValueError(f"{stream!r} has {shape[0]} clips; at least {MIN_CLIPS} are needed")
        if int(np.prod(shape)) > MAX_VALUES:
            raise ValueError(f"{stream!r} has {int(np.prod(shape)):,} values; at most {MAX_VALUES:,} (fewer clips)")


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def clips_file_source(path: Path, model_id: str, inputs: Mapping[Stream, InputSpec]) -> NaturalClipSource:
    """The natural clips of a checked clips file (:func:`check_clips_file`), named by its content."""
    named = _digest(path)
    streams = list(inputs)

    def load() -> NaturalClips:
        if _digest(path) != named:  # what is computed from them is stored under the name of the old content
            raise ValueError(f"the clips file {path.name} changed since the model file was loaded: restart the server")
        with np.load(path, allow_pickle=False) as arrays:
            clips: NaturalClips = {s: arrays[s] for s in streams}
        if "motion" in clips:
            clips["motion"] = clips["motion"].astype(np.float32, copy=False)
        return clips

    return NaturalClipSource(f"{model_id}-clips-{named}", load)


def save_clips_file(path: Path, clips: NaturalClips) -> None:
    """Write ``clips`` ({stream: (N, T, H, W, C)}: RGB uint8, flow float32 pixels) as a clips file."""
    arrays = {s: np.asarray(x, np.uint8 if s == "appearance" else np.float32) for s, x in clips.items()}
    with path.open("wb") as out:
        np.savez_compressed(out, **arrays)  # type: ignore[arg-type]  # streams are the arrays' names
