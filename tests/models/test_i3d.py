"""Two-stream I3D: the public checkpoints' layout loads strictly, TF "SAME" padding, summed logits.

There are no real weights on this machine, so no accuracy check is possible here: the checkpoints
are random tensors saved with exactly the published keys, shapes and dtypes (``data/*.tsv``).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from stlens.models.i3d import InceptionI3d, MaxPool3dSame, TwoStreamI3D, Unit3D, same_padding
from stlens.models.zoo import I3D_CHECKPOINTS, zoo_entries

from .conftest import DATA

SHARED_LABELS = Path("/work/shared/reference/kinetics400_labels.txt")
DTYPES = {"torch.float32": torch.float32, "torch.int64": torch.int64}


def published_layout(stream: str) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    rows = [line.split("\t") for line in (DATA / f"i3d_{stream}_state_dict.tsv").read_text().splitlines()]
    return [
        (key, tuple(int(d) for d in shape.strip("()").split(",") if d.strip()), DTYPES[dtype])
        for key, shape, dtype in rows
    ]


def random_checkpoint(path: Path, stream: str, with_batches_tracked: bool) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(len(stream))
    state = {}
    for key, shape, dtype in published_layout(stream):
        if key.endswith("num_batches_tracked"):
            if with_batches_tracked:
                state[key] = torch.tensor(1000, dtype=dtype)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator, dtype=dtype) * 0.05
    torch.save(state, path)
    return state


def test_the_towers_have_exactly_the_published_keys_and_shapes() -> None:
    for stream, channels in (("rgb", 3), ("flow", 2)):
        ours = {k: (tuple(v.shape), v.dtype) for k, v in InceptionI3d(channels).state_dict().items()}
        assert ours == {key: (shape, dtype) for key, shape, dtype in published_layout(stream)}
    assert sum(s.numel() for s in InceptionI3d(3).state_dict().values() if s.is_floating_point()) == 12_711_824


@pytest.mark.parametrize("with_batches_tracked", [True, False])
def test_public_checkpoints_load_strictly(tmp_path: Path, with_batches_tracked: bool) -> None:
    rgb = random_checkpoint(tmp_path / "rgb_imagenet.pt", "rgb", with_batches_tracked)
    flow = random_checkpoint(tmp_path / "flow_imagenet.pt", "flow", with_batches_tracked)
    model = TwoStreamI3D()
    model.load_stream_checkpoints(tmp_path / "rgb_imagenet.pt", tmp_path / "flow_imagenet.pt")
    for tower, state in ((model.appearance, rgb), (model.motion, flow)):
        loaded = tower.state_dict()
        for key, value in state.items():
            assert torch.equal(loaded[key], value), key
        assert ("Mixed_5c.b0.bn.num_batches_tracked" in state) == with_batches_tracked


def test_a_checkpoint_of_the_wrong_stream_or_with_missing_keys_is_refused(tmp_path: Path) -> None:
    random_checkpoint(tmp_path / "rgb.pt", "rgb", True)
    state = random_checkpoint(tmp_path / "flow.pt", "flow", True)
    with pytest.raises(RuntimeError, match="Conv3d_1a_7x7.conv3d.weight"):
        TwoStreamI3D().load_stream_checkpoints(tmp_path / "flow.pt", tmp_path / "flow.pt")
    del state["Mixed_4c.b1b.conv3d.weight"]
    torch.save(state, tmp_path / "flow.pt")
    with pytest.raises(RuntimeError, match="Missing key"):
        TwoStreamI3D().load_stream_checkpoints(tmp_path / "rgb.pt", tmp_path / "flow.pt")


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (224, 7, 2, (2, 3)),  # divisible: total = k - s = 5, smaller half first
        (225, 7, 2, (3, 3)),  # not divisible: total = k - size % s = 6
        (16, 1, 1, (0, 0)),
        (8, 3, 1, (1, 1)),
        (7, 2, 2, (0, 1)),  # MaxPool3d_5a_2x2 on an odd size: pad after only
        (8, 2, 2, (0, 0)),
    ],
)
def test_same_padding_follows_tensorflow(size: int, kernel: int, stride: int, expected: tuple[int, int]) -> None:
    assert same_padding((size,), (kernel,), (stride,)) == expected


@pytest.mark.parametrize("size", [7, 8, 9, 15, 16])
def test_same_convs_and_pools_output_ceil_of_size_over_stride(size: int) -> None:
    x = torch.rand(1, 2, size, size + 1, size + 2)
    for stride in (1, 2):
        expected = tuple(math.ceil(s / stride) for s in x.shape[2:])
        assert tuple(Unit3D(2, 4, (3, 7, 7), (stride,) * 3)(x).shape[2:]) == expected
        assert tuple(MaxPool3dSame((3, 3, 3), (stride,) * 3)(x).shape[2:]) == expected


def test_same_conv_pads_asymmetrically_like_tensorflow() -> None:
    """An even input, kernel 3, stride 2: TF pads 0 before and 1 after (PyTorch's padding=1 would not)."""
    unit = Unit3D(1, 1, (1, 1, 3), (1, 1, 2), batch_norm=False, relu=False)
    with torch.no_grad():
        unit.conv3d.weight.copy_(torch.tensor([1.0, 10.0, 100.0]).view(1, 1, 1, 1, 3))
    x = torch.arange(1.0, 5.0).view(1, 1, 1, 1, 4)
    # windows [1, 2, 3] and [3, 4, 0]
    assert unit(x).flatten().tolist() == [1 + 20 + 300, 3 + 40 + 0]
    assert (
        F.conv3d(x, unit.conv3d.weight, stride=(1, 1, 2), padding=(0, 0, 1)).flatten().tolist()
        != unit(x).flatten().tolist()
    )


def test_two_stream_logits_are_the_sum_of_the_towers() -> None:
    torch.manual_seed(0)
    model = TwoStreamI3D(num_classes=7).eval()
    rgb, flow = torch.rand(1, 3, 8, 32, 32) * 2 - 1, torch.rand(1, 2, 8, 32, 32) * 2 - 1
    with torch.no_grad():
        joint = model(appearance=rgb, motion=flow)
        assert torch.allclose(joint, model.appearance(rgb) + model.motion(flow))
    with pytest.raises(ValueError, match="both streams"):
        model(appearance=rgb)


def test_the_zoo_entry_loads_cached_checkpoints_and_says_so(cache_dir: Path) -> None:
    def i3d_entry():
        return next(e for e in zoo_entries() if e.spec.id == "i3d-kinetics400")

    assert "random weights" in i3d_entry().spec.title
    cache_dir.mkdir()
    rgb = random_checkpoint(cache_dir / I3D_CHECKPOINTS["appearance"].filename, "rgb", False)
    random_checkpoint(cache_dir / I3D_CHECKPOINTS["motion"].filename, "flow", False)
    entry = i3d_entry()
    assert "Kinetics-400" in entry.spec.title and entry.spec.num_classes == 400
    model = entry.build()
    assert torch.equal(model.appearance.state_dict()["Mixed_3b.b0.conv3d.weight"], rgb["Mixed_3b.b0.conv3d.weight"])


@pytest.mark.skipif(not SHARED_LABELS.exists(), reason="the shared Kinetics-400 label list is not on this machine")
def test_labels_are_kinetics400_in_logit_order() -> None:
    entry = next(e for e in zoo_entries() if e.spec.id == "i3d-kinetics400")
    assert list(entry.spec.labels) == SHARED_LABELS.read_text().splitlines()
