"""Benchmark of the visualisation engine (figures go to docs/benchmarks.md).

    python bench/engine_bench.py [--threads 1] [--steps 32] [--repeats 3] [--device cpu|cuda]
        [--zoo ID [ID ...]] [--skip-lucent]

1. per-step cost of ``visualize`` over a bare forward+backward of the same truncated network on
   an input of the same size (goal <= 1.15x), at an early layer and at the logits;
2. batched throughput (units per second) for 1, 4 and 16 units of one layer;
3. against Lucent 0.1.8 on torchvision resnet18 (random weights), a layer2 channel at 128 px,
   equal steps, Fourier + decorrelated colour parameterisation and standard transforms on both
   sides, run side by side (needs ``pip install torch-lucent==0.1.8 kornia==0.4.1 decorator --no-deps``).

On the CPU, per-step figures are the CPU time of the one compute thread (``time.thread_time``:
what other processes on a shared machine do barely moves it); on a GPU they are wall times
between synchronisations. Medians over ``--repeats`` interleaved runs; the Lucent comparison
gives wall times, the best of ``--repeats``. ``--zoo`` adds zoo models (heavy ones included) at
their first, middle and last layer, and on a GPU the engine with and without bf16 autocast.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
import types
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torchvision
from stlens.engine import VisualizationSettings, visualize
from stlens.models.builtin import builtin_entries
from stlens.models.image2d import image_classifier_entry
from stlens.models.introspect import probe
from stlens.models.registry import LoadedModel, prepare


def clock(device: torch.device) -> Callable[[], float]:
    """Seconds now: this thread's CPU time on the CPU; wall time after a synchronisation on a GPU."""
    if device.type != "cuda":
        return time.thread_time

    def synchronised() -> float:
        torch.cuda.synchronize(device)
        return time.perf_counter()

    return synchronised


def bare_step_times(model: LoadedModel, layer: str, unit: int, batch: int, steps: int, amp: bool) -> list[float]:
    """Seconds per step of a forward to ``layer`` and backward to model-space inputs, nothing else
    (under the same autocast as the engine's)."""
    streams = model.layer(layer).inputs
    inputs = {s: torch.randn(batch, *model.spec.inputs[s].shape, device=model.device, requires_grad=True) for s in streams}
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp) if model.device.type == "cuda" else nullcontext()
    now = clock(model.device)
    times = []
    with probe(model.module, layer) as run:
        for _ in range(steps):
            start = now()
            for x in inputs.values():
                x.grad = None
            with autocast:
                output = run(inputs)
            output.float()[:, unit].mean().backward()
            times.append(now() - start)
    return times


def engine_step_times(
    model: LoadedModel,
    layer: str,
    units: list[int],
    steps: int,
    amp: bool | None = None,
    graphs: bool | None = None,
    param: str = "spectrum",
) -> list[float]:
    """Seconds per step of ``visualize``, with a progress callback every step that reads no
    preview (a live view reads one only every ``preview_interval_s``)."""
    now = clock(model.device)
    stamps = [now()]
    settings = VisualizationSettings(steps=steps, param=param)
    visualize(model, layer, units, settings, progress=lambda _: stamps.append(now()), amp=amp, graphs=graphs)
    return [b - a for a, b in itertools.pairwise(stamps[1:])]  # the first interval holds the set-up


def median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times)


def overhead(model: LoadedModel, layers: list[str], steps: int, repeats: int, amp: bool | None = None) -> None:
    precision = {None: "", True: ", bf16 autocast", False: ", float32"}[amp]
    print(f"\n## Per-step cost over a bare forward+backward ({model.spec.id}, batch 1, median step{precision})\n")
    cuda = model.device.type == "cuda"
    eager_columns = " engine without CUDA graph | ratio |" if cuda else ""
    print("| layer | bare ms/step | engine ms/step | ratio | engine, fourier basis | ratio | engine, pca basis | ratio |"
          + eager_columns)
    print("|---|---|---|---|---|---|---|---|" + ("---|---|" if cuda else ""))
    bare_amp = amp if amp is not None else cuda and torch.cuda.is_bf16_supported()
    for layer in layers:
        bare, engine, fourier, pca, eager = [], [], [], [], []
        for _ in range(repeats):  # interleaved, so all see the same load
            bare += bare_step_times(model, layer, 0, 1, steps, bare_amp)
            engine += engine_step_times(model, layer, [0], steps, amp)
            fourier += engine_step_times(model, layer, [0], steps, amp, param="fourier")
            if model.natural_clips is not None:  # the built-ins' default at the logits
                pca += engine_step_times(model, layer, [0], steps, amp, param="pca")
            if cuda:
                eager += engine_step_times(model, layer, [0], steps, amp, graphs=False)
        row = f"| {layer} | {median_ms(bare):.1f} | {median_ms(engine):.1f} | {median_ms(engine) / median_ms(bare):.2f}x |"
        row += f" {median_ms(fourier):.1f} | {median_ms(fourier) / median_ms(bare):.2f}x |"
        row += f" {median_ms(pca):.1f} | {median_ms(pca) / median_ms(bare):.2f}x |" if pca else " - | - |"
        if cuda:
            row += f" {median_ms(eager):.1f} | {median_ms(eager) / median_ms(bare):.2f}x |"
        print(row)


def zoo_overheads(model_ids: list[str], device: torch.device, steps: int, repeats: int) -> None:
    """Overhead at the first, middle and last layer of each zoo model; on a GPU with and without AMP."""
    from stlens.models.zoo import zoo_entries

    entries = {e.spec.id: e for e in zoo_entries(include_heavy=True)}
    for model_id in model_ids:
        model = prepare(entries[model_id], device)
        layers = [model.layers[0].id, model.layers[len(model.layers) // 2].id, model.layers[-1].id]
        for amp in (True, False) if device.type == "cuda" else (None,):
            overhead(model, layers, steps, repeats, amp)
        del model


def throughput(model: LoadedModel, layer: str, steps: int, repeats: int) -> None:
    print(f"\n## Batched throughput ({layer}, units visualised per second at 128 steps each)\n")
    print("| units in one batch | ms/step | units/s | speed-up over one at a time |")
    print("|---|---|---|---|")
    single = None
    for batch in (1, 4, 16):
        times = []
        for _ in range(repeats):
            times += engine_step_times(model, layer, list(range(batch)), steps)
        rate = batch / (128 * median_ms(times) / 1000)
        single = single or rate
        print(f"| {batch} | {median_ms(times):.0f} | {rate:.2f} | {rate / single:.2f}x |")


def import_lucent():
    """Lucent imports IPython only to show images inline; the benchmark never shows one."""
    if "IPython" not in sys.modules:
        ipython = types.ModuleType("IPython")
        ipython.display = types.ModuleType("IPython.display")
        sys.modules["IPython"] = ipython
        sys.modules["IPython.display"] = ipython.display
    from lucent.optvis import param, render

    return param, render


def versus_lucent(steps: int, repeats: int, device: torch.device) -> None:
    param, render = import_lucent()
    size, channel = 128, 5

    def resnet() -> torch.nn.Module:
        torch.manual_seed(0)
        return torchvision.models.resnet18(weights=None)

    entry = image_classifier_entry(
        "resnet18", "resnet18", resnet, [str(i) for i in range(1000)], size=size, layers=["layer2"]
    )
    model = prepare(entry, device)
    lucent_net = resnet().to(device).eval()
    for p in lucent_net.parameters():
        p.requires_grad_(False)

    def lucent() -> None:
        render.render_vis(
            lucent_net, f"layer2:{channel}", lambda: param.image(size, fft=True, decorrelate=True),
            thresholds=(steps,), show_image=False, progress=False, fixed_image_size=size,
        )

    def ours() -> None:
        visualize(model, "classifier.layer2", channel, VisualizationSettings(steps=steps))

    def wall(fn: Callable[[], None]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    ours_s = lucent_s = float("inf")
    for _ in range(repeats):  # interleaved, best of each
        lucent_s = min(lucent_s, wall(lucent))
        ours_s = min(ours_s, wall(ours))
    print(f"\n## Against Lucent 0.1.8 (resnet18 random weights, layer2 channel {channel}, {size} px, {steps} steps)\n")
    print("| | wall s | ms/step |")
    print("|---|---|---|")
    print(f"| Lucent render_vis | {lucent_s:.2f} | {1000 * lucent_s / steps:.0f} |")
    print(f"| stlens visualize | {ours_s:.2f} | {1000 * ours_s / steps:.0f} |")
    print(f"\nstlens / Lucent wall time: {ours_s / lucent_s:.2f}x")


def profile_engine(model_id: str, layer: str, device: torch.device, steps: int) -> None:
    """The engine's top operators at one layer (torch.profiler, CPU and CUDA time), to see where a step goes."""
    from stlens.models.zoo import zoo_entries
    from torch.profiler import ProfilerActivity, profile

    entries = {e.spec.id: e for e in [*builtin_entries(), *zoo_entries(include_heavy=True)]}
    model = prepare(entries[model_id], device)
    engine_step_times(model, layer, [0], 2)  # warm-up: kernels, FFT plans
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        engine_step_times(model, layer, [0], steps)
    sort = "cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"\n## Profile of {steps} steps ({model_id}, {layer})\n")
    print(prof.key_averages().table(sort_by=sort, row_limit=25))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: stable on a shared machine)")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-lucent", action="store_true")
    parser.add_argument("--profile", nargs=2, metavar=("MODEL", "LAYER"), help="only profile the engine at one layer")
    parser.add_argument("--zoo", nargs="*", default=[], metavar="ID", help="zoo models to add, e.g. vgg16-twostream-small")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s), device {device} ({name})")
    if args.profile:
        profile_engine(*args.profile, device, args.steps)
        return
    model = prepare(builtin_entries()[0], device)
    overhead(model, ["appearance.conv1", "motion.conv3", "fusion.conv", "logits"], args.steps, args.repeats)
    throughput(model, "fusion.conv", args.steps, args.repeats)
    zoo_overheads(args.zoo, device, args.steps if device.type == "cuda" else max(4, args.steps // 4), 1 if device.type == "cpu" else args.repeats)
    if not args.skip_lucent:
        versus_lucent(args.steps, args.repeats, device)


if __name__ == "__main__":
    main()
