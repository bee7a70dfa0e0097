"""Pictures for docs/engine.md: what the engine's settings do on the built-in small model.

    python bench/engine_figures.py [--out docs/images/engine] [--model synth-conv-fusion]

Each figure is a grid: one row a visualisation, every other frame left to right; the appearance
clip above its flow clip (direction coding: hue = direction, saturation = magnitude, scaled to
the clip's largest vector, which the label gives). Saved as 64-colour PNGs to stay small.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from stlens.engine import VisualizationSettings, visualize
from stlens.models.builtin import builtin_entries
from stlens.models.registry import LoadedModel, prepare
from torchvision.utils import flow_to_image

LABEL_WIDTH = 150
FRAME_STEP = 2  # show every other frame
COLOURS = 64


def rgb_frames(clip: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) in [0, 1] -> (H, T*W, 3) uint8."""
    return (np.concatenate(list(clip[::FRAME_STEP]), axis=1) * 255).round().astype(np.uint8)


def flow_frames(clip: np.ndarray) -> np.ndarray:
    """(T, H, W, 2) flow px -> (H, T*W, 3) uint8, all frames on one magnitude scale."""
    flow = torch.from_numpy(clip[::FRAME_STEP]).permute(0, 3, 1, 2)  # (T, 2, H, W)
    images = flow_to_image(flow)  # normalised by the largest vector of the whole clip
    return np.concatenate(list(images.permute(0, 2, 3, 1).numpy()), axis=1)


def labelled(row: np.ndarray, label: str) -> np.ndarray:
    canvas = Image.new("RGB", (LABEL_WIDTH + row.shape[1], row.shape[0]), "white")
    canvas.paste(Image.fromarray(row), (LABEL_WIDTH, 0))
    ImageDraw.Draw(canvas).multiline_text((4, 4), label, fill="black")
    return np.asarray(canvas)


def rows_of(result_inputs: dict[str, np.ndarray], index: int, label: str) -> list[np.ndarray]:
    rows = []
    if "appearance" in result_inputs:
        rows.append(labelled(rgb_frames(result_inputs["appearance"][index]), label))
    if "motion" in result_inputs:
        flow = result_inputs["motion"][index]
        note = f"max |flow| {np.linalg.norm(flow, axis=-1).max():.1f} px"
        rows.append(labelled(flow_frames(flow), note if rows else f"{label}\n{note}"))
    return rows


def save_grid(rows: list[np.ndarray], path: Path) -> None:
    gap = np.full((2, rows[0].shape[1], 3), 255, np.uint8)
    grid = np.concatenate([r for row in rows for r in (row, gap)][:-1], axis=0)
    Image.fromarray(grid).quantize(COLOURS).save(path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def layer_gallery(model: LoadedModel, out: Path) -> None:
    rows = []
    for layer in ("appearance.conv2", "appearance.conv3", "motion.conv2", "motion.conv3", "fusion.conv", "logits"):
        result = visualize(model, layer, 1, VisualizationSettings())
        rows += rows_of(result.inputs, 0, f"{layer} unit 1\nobjective {result.objective[0]:.2f}")
    save_grid(rows, out / "layers.png")


def temporal_sweep(model: LoadedModel, out: Path) -> None:
    weights = [0.0, 0.3, 3.0, 30.0]
    batch = [VisualizationSettings(weights={"tv_time": {"appearance": w, "motion": w}}) for w in weights]
    result = visualize(model, "fusion.conv", 1, batch)
    rows = []
    for i, w in enumerate(weights):
        change = {s: np.abs(np.diff(x[i], axis=0)).mean() for s, x in result.inputs.items()}
        label = f"tv_time {w:g}\nobjective {result.objective[i]:.2f}\nmean |d/dt|: RGB {change['appearance']:.3f}"
        rows += rows_of(result.inputs, i, f"{label}\n  flow {change['motion']:.2f} px")
    save_grid(rows, out / "tv_time.png")


def animation(model: LoadedModel, out: Path) -> None:
    """The fast -> slow sweep as a looping GIF: one row a temporal weight, RGB | flow."""
    weights = [0.0, 0.3, 3.0]
    batch = [VisualizationSettings(weights={"tv_time": {"appearance": w, "motion": w}}) for w in weights]
    result = visualize(model, "fusion.conv", 1, batch)
    rgb, flow = result.inputs["appearance"], result.inputs["motion"]
    frames = []
    for t in range(rgb.shape[1]):
        rows = [
            np.concatenate([rgb_frames(rgb[i, t : t + 1]), flow_frames_at(flow[i], t)], axis=1)
            for i in range(len(weights))
        ]
        frames.append(Image.fromarray(np.concatenate(rows, axis=0)).quantize(COLOURS))
    path = out / "tv_time.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=125, loop=0, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def flow_frames_at(clip: np.ndarray, t: int) -> np.ndarray:
    """Frame t of a flow clip in direction coding, scaled to the whole clip's largest vector."""
    images = flow_to_image(torch.from_numpy(clip).permute(0, 3, 1, 2))
    return images[t].permute(1, 2, 0).numpy()


def parameterisations(model: LoadedModel, out: Path) -> None:
    rows = []
    for param in ("pixel", "fourier"):
        result = visualize(model, "fusion.conv", 1, VisualizationSettings(param=param))
        rows += rows_of(result.inputs, 0, f"{param}\nobjective {result.objective[0]:.2f}")
    save_grid(rows, out / "param.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/images/engine"))
    parser.add_argument("--model", default="synth-conv-fusion")
    parser.add_argument("--only", nargs="*", default=["layers", "tv_time", "param", "animation"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    entry = next(e for e in builtin_entries() if e.spec.id == args.model)
    model = prepare(entry, torch.device("cpu"))
    figures = {"layers": layer_gallery, "tv_time": temporal_sweep, "param": parameterisations, "animation": animation}
    for name in args.only:
        figures[name](model, args.out)


if __name__ == "__main__":
    main()
