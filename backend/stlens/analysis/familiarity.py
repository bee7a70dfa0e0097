"""Does a clip look like what the model was trained on? The Explain page's out-of-distribution caveat.

A model's softmax is no guide: a built-in model calls the real footage of bikes.mp4 "clap" at 91.6%.
Two tests on what the model itself computes, each calibrated on the model's own test clips (the
synthetic world's, for the models trained on it), flag a clip that falls in the outer tail of either:

- **energy** (Liu, Wang, Owens and Li, "Energy-based Out-of-distribution Detection", NeurIPS 2020): the
  log-sum-exp of the class logits, the model's own measure of how much any class fits; a clip below the
  ``ENERGY_PERCENTILE``-th percentile of the test clips' energies is unfamiliar;
- **deep nearest neighbours** (Sun, Ming, Zhu and Li, ICML 2022): the clip's per-unit mean activations of
  the deepest hidden layer of each kind (appearance, motion, fusion), each part and the whole of unit length;
  its distance to the K-th nearest test clip beyond the ``DISTANCE_PERCENTILE``-th percentile of the test
  clips' own such distances is unfamiliar.

docs/insights.md gives how often each flags the test clips and real footage. Models without reference
clips here (the zoo, model files) are reported as not measured.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import torch
from pydantic import BaseModel, Field

from ..models.registry import LoadedModel
from ..models.spec import LOGITS
from .ablation import to_model
from .synthset import batches, example_clips, examples_available
from .units import many_layer_activations, unit_means

K = 5  # the K-th nearest reference clip
ENERGY_PERCENTILE = 2.5
DISTANCE_PERCENTILE = 97.5
REFERENCES_KEPT = 8


class Familiarity(BaseModel):
    """How the clip compares with the model's own test clips."""

    measured: bool = Field(description="false: no clips of the model's training world here to compare with")
    familiar: bool | None = Field(default=None, description="false: the clip does not look like the training data")
    energy: float | None = Field(default=None, description="log-sum-exp of the logits: low is unfamiliar")
    energy_limit: float | None = Field(
        default=None, description=f"the {ENERGY_PERCENTILE:g}th percentile of the test clips' energies"
    )
    distance: float | None = Field(default=None, description="to the K-th nearest test clip, in the model's features")
    distance_limit: float | None = Field(
        default=None, description=f"the {DISTANCE_PERCENTILE:g}th percentile of the test clips' own distances"
    )
    references: int = Field(default=0, description="test clips compared with")
    method: str = "energy (Liu et al. 2020) and deep nearest neighbours (Sun et al. 2022), on the model's test clips"
    detail: str


def feature_layers(model: LoadedModel) -> list[str]:
    """The deepest hidden layer of each kind the model has (appearance, motion, fusion)."""
    deepest: dict[str, str] = {}
    for layer in model.layers:
        if layer.id != LOGITS:
            deepest[layer.stream] = layer.id
    return list(deepest.values())


@torch.no_grad()
def measures(model: LoadedModel, model_inputs: Mapping[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Energies (N,) and unit-length features (N, D) of a batch of model-space inputs."""
    names = feature_layers(model)
    outputs = many_layer_activations(model, [*names, LOGITS], model_inputs)
    energy = torch.logsumexp(outputs[LOGITS].float(), dim=1)
    parts = [torch.nn.functional.normalize(unit_means(outputs[name]).float(), dim=1) for name in names]
    feats = torch.nn.functional.normalize(torch.cat(parts, 1), dim=1)
    return energy.cpu().numpy(), feats.cpu().numpy()


def _kth_distances(queries: np.ndarray, references: np.ndarray, skip_self: bool) -> np.ndarray:
    distances = np.sqrt(np.maximum(2.0 - 2.0 * queries @ references.T, 0.0))  # unit vectors
    distances.sort(axis=1)
    return distances[:, K if skip_self else K - 1]  # a reference clip's nearest one is itself


class Reference:
    """The test clips' features and the two limits, per model weights."""

    def __init__(self) -> None:
        self._kept: OrderedDict[str, tuple[np.ndarray, float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, model: LoadedModel) -> tuple[np.ndarray, float, float]:
        """(features, energy limit, distance limit). Call with the model's lock held."""
        with self._lock:
            if model.weights_hash not in self._kept:
                measured = [
                    measures(model, {s: x.to(model.device) for s, x in batch.items()})
                    for batch in batches(example_clips())
                ]
                energies = np.concatenate([energy for energy, _ in measured])
                feats = np.concatenate([f for _, f in measured])
                own = _kth_distances(feats, feats, skip_self=True)
                self._kept[model.weights_hash] = (
                    feats,
                    float(np.percentile(energies, ENERGY_PERCENTILE)),
                    float(np.percentile(own, DISTANCE_PERCENTILE)),
                )
                while len(self._kept) > REFERENCES_KEPT:
                    self._kept.popitem(last=False)
            self._kept.move_to_end(model.weights_hash)
            return self._kept[model.weights_hash]


reference = Reference()


def familiarity(model: LoadedModel, display: Mapping[str, torch.Tensor]) -> Familiarity:
    """How like the model's training world one clip (display space, batch of one) is.
    Call with the model's lock held."""
    if not examples_available(model.spec):
        return Familiarity(
            measured=False, detail="There are no clips of this model's training data here to compare the clip with."
        )
    feats, energy_limit, distance_limit = reference.of(model)
    energies, clip_feats = measures(model, to_model(model.spec, display))
    energy = float(energies[0])
    distance = float(_kth_distances(clip_feats, feats, skip_self=False)[0])
    reasons = []
    if energy < energy_limit:
        reasons.append("no class fits it as well as one fits almost every test clip")
    if distance > distance_limit:
        reasons.append("the model's features of it are further from its test clips' than theirs are from each other")
    familiar = not reasons
    detail = (
        "The clip looks like the model's training world (its test clips)."
        if familiar
        else "This clip does not look like what the model was trained on (" + "; ".join(reasons)
        + "): its prediction and Grad-CAM mean little."
    )
    return Familiarity(
        measured=True, familiar=familiar, energy=energy, energy_limit=energy_limit, distance=distance,
        distance_limit=distance_limit, references=len(feats), detail=detail,
    )
