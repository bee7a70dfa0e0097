"""A unit's dataset examples as pictures: its top test clips with the peak marked in space and time.

All units of a layer are indexed in one pass (examples.dataset_examples) the first time any of them
is asked for; the index is kept per model weights and layer, a bounded number at a time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import cv2
import numpy as np
from pydantic import BaseModel

from ..flow import coding
from ..media.frames import enlarge
from ..models.registry import LoadedModel
from ..synth.actions import LABELS
from .examples import MAX_EXAMPLES, Example, dataset_examples
from .explain import strip_url
from .synthset import batches, example_clips, examples_available

INDEXES_KEPT = 16
ZOOM = 2
MARK = (255, 220, 0)


class ExampleView(BaseModel):
    clip: int
    label: str
    activation: float
    where: tuple[float, float, float] | None
    appearance: str  # data URL of the frame strip, the peak boxed on its frame
    motion: str  # the same for the direction-coded flow


class UnitExamples(BaseModel):
    model: str
    layer: str
    unit: int
    clips: int  # how many test clips were searched
    examples: list[ExampleView]


class ExampleIndex:
    """Top-k clips of every unit, per (model weights, layer), computed on first use."""

    def __init__(self, k: int = MAX_EXAMPLES // 4):
        self.k = k
        self._index: OrderedDict[tuple[str, str], list[list[Example]]] = OrderedDict()
        self._lock = threading.Lock()

    def layer(self, model: LoadedModel, layer_id: str) -> list[list[Example]]:
        key = (model.weights_hash, layer_id)
        with self._lock:
            if key not in self._index:
                # the model's lock: a visualisation running meanwhile has its layer probe hooked into
                # the same module, and the two forward passes would cut each other short
                with model.lock:
                    self._index[key] = dataset_examples(model, layer_id, batches(example_clips()), self.k)
                while len(self._index) > INDEXES_KEPT:
                    self._index.popitem(last=False)
            self._index.move_to_end(key)
            return self._index[key]


def mark_peak(frames: np.ndarray, where: tuple[float, float, float], cell: tuple[float, float, float]) -> np.ndarray:
    """Box the layer cell at ``where`` ((t, y, x) fractions; ``cell`` its size as fractions) on its frame(s)."""
    out = frames.copy()
    count, height, width, _ = frames.shape
    t0, t1 = int((where[0] - cell[0] / 2) * count), int(np.ceil((where[0] + cell[0] / 2) * count))
    y0, y1 = int((where[1] - cell[1] / 2) * height), int((where[1] + cell[1] / 2) * height)
    x0, x1 = int((where[2] - cell[2] / 2) * width), int((where[2] + cell[2] / 2) * width)
    for t in range(max(t0, 0), min(max(t1, t0 + 1), count)):
        out[t] = cv2.rectangle(np.ascontiguousarray(out[t]), (x0, y0), (x1 - 1, y1 - 1), MARK, 1)
    return out


def unit_examples(index: ExampleIndex, model: LoadedModel, layer_id: str, unit: int, k: int) -> UnitExamples:
    """The unit's ``k`` best clips (k at most the index's k), as pictures."""
    if not examples_available(model.spec):
        raise ValueError(
            f"model {model.spec.id!r} was not trained on the synthetic world, whose clips dataset examples come from"
        )
    layer = model.layer(layer_id)
    if not 0 <= unit < layer.units:
        raise ValueError(f"unit must be 0 to {layer.units - 1}, got {unit}")
    if not 1 <= k <= index.k:
        raise ValueError(f"k must be 1 to {index.k}, got {k}")
    clips = example_clips()
    cell = (1.0 / layer.shape[1], 1.0 / layer.shape[2], 1.0 / layer.shape[3]) if len(layer.shape) == 4 else None
    views = []
    for e in index.layer(model, layer_id)[unit][:k]:
        pictures = {
            "appearance": enlarge(clips.frames[e.clip], ZOOM),
            "motion": enlarge(coding.direction_coding(clips.flow[e.clip].astype(np.float32)), ZOOM),
        }
        if e.where is not None and cell is not None:
            pictures = {s: mark_peak(p, e.where, cell) for s, p in pictures.items()}
        views.append(
            ExampleView(
                clip=e.clip,
                label=LABELS[int(clips.labels[e.clip])],
                activation=e.activation,
                where=e.where,
                **{s: strip_url(p) for s, p in pictures.items()},
            )
        )
    return UnitExamples(model=model.spec.id, layer=layer_id, unit=unit, clips=len(clips), examples=views)
