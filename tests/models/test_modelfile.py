"""Model files: a good file loads; each mistake gives a clear error naming the file and the model."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from stlens.engine import VisualizationSettings, visualize
from stlens.engine.eigenclips import eigenclips_of, has_eigenclips
from stlens.models.modelfile import MAX_MESSAGE_CHARS, ModelFileError, load_model_file
from stlens.models.natural_clips import save_clips_file
from stlens.models.registry import ModelRegistry
from stlens.request import settings_for

NETS = """
import torch
from torch import nn


class TwoStream(nn.Module):
    def __init__(self, num_classes=4, rgb_channels=3):
        super().__init__()
        self.appearance = nn.Conv3d(rgb_channels, 6, 3, padding=1)
        self.motion = nn.Conv3d(2, 6, 3, padding=1)
        self.fusion = nn.Conv3d(12, 8, 1)
        self.classifier = nn.Linear(8, num_classes)

    def forward(self, appearance, motion):
        x = torch.cat([self.appearance(appearance).relu(), self.motion(motion).relu()], dim=1)
        return self.classifier(self.fusion(x).relu().mean(dim=(2, 3, 4)))


def build(num_classes=4):
    return TwoStream(num_classes)


def build_rgb5():
    return TwoStream(rgb_channels=5)


def not_a_module():
    return "hello"


NOT_CALLABLE = 3
"""

INPUTS = """
[models.inputs.appearance]
channels = 3
frames = 4
height = 16
width = 16
mean = [0.45, 0.45, 0.45]
std = [0.225, 0.225, 0.225]
[models.inputs.motion]
channels = 2
frames = 4
height = 16
width = 16
scale = 20.0
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The model file's folder; ``sys.path``, which loading extends, is restored after the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "weights").mkdir()
    return tmp_path


@pytest.fixture
def module_name(folder: Path, request: pytest.FixtureRequest) -> str:
    """A factory module beside the model file, with a name unique to the test (imports are cached)."""
    name = "byo_" + "".join(c if c.isalnum() else "_" for c in request.node.name)
    (folder / f"{name}.py").write_text(NETS)
    return name


def write(folder: Path, body: str, inputs: str = INPUTS) -> Path:
    path = folder / "models.toml"
    path.write_text(textwrap.dedent(body) + inputs)
    return path


def test_a_good_file_loads_with_checkpoint_labels_and_streams(folder: Path, module_name: str) -> None:
    torch.manual_seed(3)
    (folder / "labels.txt").write_text("run\njump\nswim\n\n")
    path = write(
        folder,
        f"""
        [[models]]
        id = "my-two-stream"
        title = "My two-stream net"
        factory = "{module_name}:build"
        factory_kwargs = {{ num_classes = 3 }}
        checkpoint = "weights/my.pt"
        labels = "labels.txt"
        [models.streams]
        appearance = "appearance"
        motion = "motion"
        fusion = "fusion"
    """,
    )
    sys.path.append(str(folder))
    try:
        reference = importlib.import_module(module_name).build(3)
    finally:
        sys.path.remove(str(folder))
    torch.save(reference.state_dict(), folder / "weights" / "my.pt")
    (entry,) = load_model_file(path)
    assert entry.spec.id == "my-two-stream" and entry.spec.labels == ("run", "jump", "swim")
    assert entry.spec.streams == ["appearance", "motion"] and entry.spec.inputs["motion"].scale == 20.0
    loaded = ModelRegistry([entry], torch.device("cpu")).get("my-two-stream")
    assert torch.equal(loaded.module.classifier.weight, reference.classifier.weight)
    assert [(layer.id, layer.stream) for layer in loaded.layers] == [
        ("appearance", "appearance"),
        ("motion", "motion"),
        ("fusion", "fusion"),
        ("classifier", "fusion"),
        ("logits", "fusion"),
    ]
    # a module without partial inputs: the engine feeds zeros to the stream a layer does not use
    assert set(visualize(loaded, "motion", 0, VisualizationSettings(steps=2)).inputs) == {"motion"}


def test_without_labels_the_classes_are_counted(folder: Path, module_name: str) -> None:
    (entry,) = load_model_file(
        write(
            folder,
            f"""
        [[models]]
        id = "counted"
        title = "Counted"
        factory = "{module_name}:build"
    """,
        )
    )
    assert entry.spec.labels == ("class 0", "class 1", "class 2", "class 3")


def bad(folder: Path, body: str, match: str, inputs: str = INPUTS) -> None:
    path = write(folder, body, inputs)
    with pytest.raises(ModelFileError, match=match) as error:
        load_model_file(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        ("no_such_package.nets:build", "cannot import module 'no_such_package.nets'"),
        ("{m}:missing", "has no 'missing'"),
        ("{m}:NOT_CALLABLE", "'NOT_CALLABLE' is a int, not callable"),
        ("{m}:not_a_module", "returned a str, not a torch.nn.Module"),
    ],
)
def test_factory_errors(folder: Path, module_name: str, factory: str, match: str) -> None:
    bad(
        folder,
        f"""
        [[models]]
        id = "m"
        title = "M"
        factory = "{factory.format(m=module_name)}"
    """,
        match,
    )


def test_a_checkpoint_that_does_not_match_the_module(folder: Path, module_name: str) -> None:
    torch.save({"appearance.weight": torch.zeros(1)}, folder / "weights" / "other.pt")
    bad(
        folder,
        f"""
        [[models]]
        id = "m"
        title = "M"
        factory = "{module_name}:build"
        checkpoint = "weights/other.pt"
    """,
        r"(?s)checkpoint .*other.pt does not match the module.*Missing key",
    )


def test_a_missing_checkpoint_file_names_the_resolved_path(folder: Path, module_name: str) -> None:
    bad(
        folder,
        f"""
        [[models]]
        id = "m"
        title = "M"
        factory = "{module_name}:build"
        checkpoint = "weights/absent.pt"
    """,
        f"{folder / 'weights' / 'absent.pt'} does not exist",
    )


def test_inputs_the_module_cannot_run_on(folder: Path, module_name: str) -> None:
    bad(
        folder,
        f"""
        [[models]]
        id = "m"
        title = "M"
        factory = "{module_name}:build_rgb5"
    """,
        "does not run on the declared inputs",
    )


def test_logits_that_do_not_match_the_labels(folder: Path, module_name: str) -> None:
    (folder / "labels.txt").write_text("a\nb\n")
    bad(
        folder,
        f"""
        [[models]]
        id = "m"
        title = "M"
        factory = "{module_name}:build"
        labels = "labels.txt"
    """,
        r"dry run .* failed: the model returned logits of shape \(1, 4\); expected \(N, 2\)",
    )


def test_a_stream_prefix_that_contradicts_the_dependencies(folder: Path, module_name: str) -> None:
    bad(
        folder,
        f"""
        [[models]]
        id = "m"
        title = "M"
        factory = "{module_name}:build"
        [models.streams]
        appearance = "fusion"
    """,
        "layer 'fusion' is under the appearance prefix 'fusion' but depends on both inputs",
    )


@pytest.mark.parametrize(
    ("body", "inputs", "match"),
    [
        (
            '[[models]]\nid = "m"\ntitle = "M"\nfactory = "x:y"\ncolour = "red"\n',
            INPUTS,
            "models.0.colour: Extra inputs",
        ),
        ('[[models]]\nid = "m"\ntitle = "M"\nfactory = "x:y"\n', INPUTS.replace("scale", "scael"), "motion.scael"),
        ('[[models]]\nid = "m"\ntitle = "M"\nfactory = "x.y"\n', INPUTS, "models.0.factory: String should match"),
        ('[[models]]\nid = "m"\ntitle = "M"\nfactory = "x:y"\n', "", "models.0.inputs: Field required"),
        (
            '[[models]]\nid = "m"\ntitle = "M"\nfactory = "x:y"\n',
            INPUTS.replace("channels = 3", "channels = 2"),
            "mean has 3 values but the stream has 2 channels",
        ),
        ("[[models]\n", "", "not valid TOML"),
        ("", "", "models: Field required"),
    ],
)
def test_malformed_files(folder: Path, body: str, inputs: str, match: str) -> None:
    bad(folder, body, match, inputs)


def test_duplicate_ids_and_bad_ids(folder: Path, module_name: str) -> None:
    table = f'[[models]]\nid = "{{id}}"\ntitle = "M"\nfactory = "{module_name}:build"\n' + INPUTS
    path = folder / "models.toml"
    path.write_text(table.format(id="same") + table.format(id="same"))
    with pytest.raises(ModelFileError, match="two models share the id 'same'"):
        load_model_file(path)
    path.write_text(table.format(id="bad id!"))
    with pytest.raises(ModelFileError, match=r"model 1 \('bad id!'\): id: String should match"):
        load_model_file(path)


def test_a_missing_file() -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model_file("/no/such/models.toml")


class PickledCode:
    """An object whose unpickling would run a shell command: what a malicious checkpoint holds."""

    def __reduce__(self):
        return (os.system, ("echo pickled code ran",))


def one_checkpoint(module_name: str, checkpoint: str, preamble: str = "") -> str:
    return f"""{preamble}
        [[models]]
        id = "m"
        title = "M"
        factory = "{module_name}:build"
        checkpoint = "{checkpoint}"
    """


def refused(path: Path, match: str) -> str:
    """Loading ``path`` fails with a one-line ModelFileError matching ``match``; returns the message."""
    with pytest.raises(ModelFileError, match=match) as error:
        load_model_file(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (lambda path: torch.save({"x": PickledCode()}, path), r"refers to posix\.system, not only tensors"),
        (lambda path: path.write_bytes(b""), "is not a torch state dict file"),
        (lambda path: path.write_text("root:x:0:0:root:/root:/bin/bash\n"), "is not a torch state dict file"),
        (lambda path: torch.save({"w": torch.zeros(2)}, path) or path.write_bytes(path.read_bytes()[:60]),
         "is not a torch state dict file"),
        (lambda path: torch.save([torch.zeros(2)], path), "does not hold a state dict"),
    ],
    ids=["pickled-code", "empty", "text", "torn-archive", "a-list-of-tensors"],
)
def test_a_checkpoint_that_is_not_a_state_dict_is_one_clear_line(folder, module_name, content, match) -> None:
    content(folder / "weights" / "bad.pt")
    refused(write(folder, one_checkpoint(module_name, "weights/bad.pt")), match)


@pytest.mark.parametrize(
    ("key", "given"),
    [("checkpoint", "../../../../../etc/passwd"), ("labels", "../secret.txt"), ("labels", "weights/../../secret.txt")],
)
def test_relative_paths_cannot_leave_the_model_files_folder(folder, module_name, key, given) -> None:
    (folder.parent / "secret.txt").write_text("the admin password\n")
    path = write(folder, f'[[models]]\nid = "m"\ntitle = "M"\nfactory = "{module_name}:build"\n{key} = "{given}"\n')
    message = refused(path, "leads outside the model file's folder")
    assert "allow_absolute_paths" in message


def test_a_link_out_of_the_folder_is_refused(folder, module_name) -> None:
    (folder.parent / "secret.txt").write_text("the admin password\n")
    (folder / "labels.txt").symlink_to(folder.parent / "secret.txt")
    path = write(folder, f'[[models]]\nid = "m"\ntitle = "M"\nfactory = "{module_name}:build"\nlabels = "labels.txt"\n')
    refused(path, "leads outside the model file's folder")


def test_absolute_paths_only_where_the_file_allows_them(folder, module_name, tmp_path_factory) -> None:
    elsewhere = tmp_path_factory.mktemp("labels") / "classes.txt"
    elsewhere.write_text("a\nb\nc\nd\n")
    body = f'[[models]]\nid = "m"\ntitle = "M"\nfactory = "{module_name}:build"\nlabels = "{elsewhere}"\n'
    refused(write(folder, body), "is absolute; .*set allow_absolute_paths = true")
    (entry,) = load_model_file(write(folder, "allow_absolute_paths = true\n" + body))
    assert entry.spec.labels == ("a", "b", "c", "d")


def test_labels_that_are_not_text_are_one_clear_line(folder, module_name) -> None:
    (folder / "labels.txt").write_bytes(b"\xff\xfe\x00binary")
    path = write(folder, f'[[models]]\nid = "m"\ntitle = "M"\nfactory = "{module_name}:build"\nlabels = "labels.txt"\n')
    refused(path, "is not UTF-8 text")


def test_a_long_multiline_error_is_folded_to_one_bounded_line() -> None:
    message = str(ModelFileError("first\n\n  second\t" + "x" * 5000))
    assert message.startswith("first second x") and "\n" not in message and len(message) <= MAX_MESSAGE_CHARS


def test_stlens_serve_exits_2_with_one_line_for_a_malicious_checkpoint(folder, module_name, tmp_path) -> None:
    torch.save({"x": PickledCode()}, folder / "weights" / "evil.pt")
    path = write(folder, one_checkpoint(module_name, "weights/evil.pt"))
    done = subprocess.run(
        [sys.executable, "-m", "stlens.cli", "serve", "--models", str(path), "--data-dir", str(tmp_path / "var")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith("stlens serve: ") and "refers to posix.system" in line
    assert "pickled code ran" not in done.stdout + done.stderr


def test_a_model_declares_the_flow_its_motion_stream_was_trained_on(folder: Path, module_name: str) -> None:
    body = f"""
        [[models]]
        id = "tvl1-net"
        title = "Trained on TV-L1"
        factory = "{module_name}:build"
        flow = "tvl1"
    """
    (entry,) = load_model_file(write(folder, body))
    assert entry.spec.flow == "tvl1"
    (entry,) = load_model_file(write(folder, body.replace('flow = "tvl1"', "")))
    assert entry.spec.flow == "dis"  # the default, as the built-in models
    bad(folder, body.replace('"tvl1"', '"farneback"'), "flow")


def clips(count: int = 24, frames: int = 4, side: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """Real-looking clips of the INPUTS' sizes: a bright square drifting right on grey, its flow."""
    rng = np.random.default_rng(seed)
    rgb = np.full((count, frames, side, side, 3), 110, np.uint8)
    flow = np.zeros((count, frames, side, side, 2), np.float32)
    for n in range(count):
        y, x, speed = rng.integers(2, side - 8), rng.integers(0, side - 10), rng.integers(1, 3)
        colour = rng.integers(120, 255, 3)
        for t in range(frames):
            rgb[n, t, y : y + 5, x + speed * t : x + speed * t + 5] = colour
            flow[n, t, y : y + 5, x + speed * t : x + speed * t + 5, 0] = speed
    return {"appearance": rgb, "motion": flow}


def clips_table(folder: Path, module_name: str, name: str) -> Path:
    """A model file of one model, "with-clips", that names the clips file ``name``."""
    table = f"""
        [[models]]
        id = "with-clips"
        title = "A net with its own clips"
        factory = "{module_name}:build"
        natural_clips = "{name}"
    """
    return write(folder, table)


def with_clips(folder: Path, module_name: str, arrays: dict[str, np.ndarray], name: str = "clips.npz") -> Path:
    save_clips_file(folder / name, arrays)
    return clips_table(folder, module_name, name)


def test_a_clips_file_gives_the_model_eigenclips_and_its_class_logits_pca(folder: Path, module_name: str) -> None:
    (entry,) = load_model_file(with_clips(folder, module_name, clips()))
    assert entry.natural_clips is not None and entry.natural_clips.name.startswith("with-clips-clips-")
    loaded = ModelRegistry([entry], torch.device("cpu")).get("with-clips")
    assert has_eigenclips(loaded)
    assert settings_for(loaded, "logits", VisualizationSettings()).param == "pca"
    assert settings_for(loaded, "fusion", VisualizationSettings()).param == "spectrum"
    found = eigenclips_of(loaded, "motion")
    assert found.count == 23 and found.shape == (2, 4, 16, 16)  # N - 1 components of 24 clips
    result = visualize(loaded, "logits", 1, VisualizationSettings(steps=4))
    assert set(result.inputs) == {"appearance", "motion"} and np.isfinite(result.inputs["motion"]).all()
    # another file's content is another name, so its eigenclips are measured afresh
    (other,) = load_model_file(with_clips(folder, module_name, clips(seed=1), "other.npz"))
    assert other.natural_clips is not None and other.natural_clips.name != entry.natural_clips.name
    save_clips_file(folder / "other.npz", clips(seed=2))  # changed under a running server: refused when read
    with pytest.raises(ValueError, match="changed since the model file was loaded"):
        other.natural_clips.load()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c: {"appearance": c["appearance"]}, "no 'motion' array"),
        (lambda c: {**c, "motion": c["motion"][:, :3]}, r"'motion' is \(24, 3, 16, 16, 2\); expected \(N, 4, 16, 16, 2\)"),
        (lambda c: {**c, "appearance": c["appearance"][:5]}, "has 5 clips; at least 16"),
    ],
)
def test_a_clips_file_that_does_not_fit_the_model_is_refused_with_what_is_wrong(
    folder: Path, module_name: str, change, match: str
) -> None:
    path = with_clips(folder, module_name, change(clips()))
    with pytest.raises(ModelFileError, match=match):
        load_model_file(path)


def test_a_clips_file_of_another_kind_or_missing_is_refused(folder: Path, module_name: str) -> None:
    path = with_clips(folder, module_name, clips())
    np.savez(folder / "clips.npz", appearance=clips()["appearance"] / 255, motion=clips()["motion"])
    with pytest.raises(ModelFileError, match="'appearance' is float64; expected uint8"):
        load_model_file(path)
    (folder / "clips.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="clips.npz cannot be used: not an .npz"):
        load_model_file(path)
    save_clips_file(folder / "clips.npz", clips())
    damaged = bytearray((folder / "clips.npz").read_bytes())
    damaged[40:4000] = bytes(3960)  # inside the first member's compressed data: its header cannot be read
    (folder / "clips.npz").write_bytes(bytes(damaged))
    with pytest.raises(ModelFileError, match="clips.npz cannot be used: not an .npz"):
        load_model_file(path)
    (folder / "clips.npz").unlink()
    with pytest.raises(ModelFileError, match="clips.npz"):
        load_model_file(path)


def test_stlens_natural_clips_cuts_a_clips_file_from_videos_that_the_model_file_then_takes(
    folder: Path, module_name: str, capsys
) -> None:
    from stlens.cli import main
    from stlens.media.encode import mp4

    moving = clips(count=3, frames=20, side=32)["appearance"]  # three 20-frame videos of a drifting square
    videos = []
    for n, frames in enumerate(moving):
        videos.append(folder / f"video{n}.mp4")
        videos[-1].write_bytes(mp4(frames, fps=8))
    path = clips_table(folder, module_name, "cut.npz")  # naming the file before it is made
    out = folder / "cut.npz"
    command = ["natural-clips", *map(str, videos), "--models", str(path), "--model", "with-clips", "--quiet"]
    assert main([*command, "--out", str(out), "--per-video", "6"]) == 0
    assert "18 clips of 3 videos" in capsys.readouterr().out
    with np.load(out) as cut:
        assert cut["appearance"].shape == (18, 4, 16, 16, 3) and cut["motion"].shape == (18, 4, 16, 16, 2)
        assert cut["appearance"].dtype == np.uint8 and np.abs(cut["motion"]).max() > 0.5  # the square moves
    (entry,) = load_model_file(path)
    assert entry.natural_clips is not None
    with pytest.raises(SystemExit, match="needs at least 16"):
        main([*command, "--out", str(out), "--per-video", "2"])
    with pytest.raises(SystemExit, match="has no model 'nope'"):
        main([*command[:-3], "--model", "nope", "--out", str(out)])
