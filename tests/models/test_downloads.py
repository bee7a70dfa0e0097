"""Checkpoint downloads from a local HTTP server on 127.0.0.1: cache, checksum, offline message."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from stlens.models import downloads
from stlens.models.downloads import Checkpoint, DownloadError, cached, download, load_state_dict
from stlens.models.torchvision_video import VIDEO_ARCHITECTURES
from stlens.models.zoo import fetch, zoo_entries


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, folder it serves)."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()
    server.server_close()
    thread.join()


def weights_file(folder: Path, name: str) -> tuple[dict[str, torch.Tensor], str]:
    state = {"conv.weight": torch.randn(4, 3, 3, 3), "conv.bias": torch.zeros(4)}
    torch.save(state, folder / name)
    return state, hashlib.sha256((folder / name).read_bytes()).hexdigest()


def test_cache_folder_comes_from_the_environment(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert downloads.cache_dir() == cache_dir
    monkeypatch.delenv("STLENS_CACHE_DIR")
    assert downloads.cache_dir() == Path("~/.cache/stlens").expanduser()


def test_download_verifies_the_checksum_and_caches(served: tuple[str, Path], cache_dir: Path) -> None:
    base, folder = served
    state, digest = weights_file(folder, "net.pt")
    checkpoint = Checkpoint(url=f"{base}/net.pt", filename="net-cached.pt", sha256=digest)
    assert cached(checkpoint) is None
    path = download(checkpoint, progress=False)
    assert path == cache_dir / "net-cached.pt" and cached(checkpoint) == path
    loaded = load_state_dict(path)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    (folder / "net.pt").unlink()  # a second call uses the cache, not the server
    assert download(checkpoint, progress=False) == path


def test_a_digest_prefix_in_the_file_name_is_checked(served: tuple[str, Path], cache_dir: Path) -> None:
    base, folder = served
    _, digest = weights_file(folder, "net.pt")
    (folder / f"net-{digest[:8]}.pth").write_bytes((folder / "net.pt").read_bytes())
    checkpoint = Checkpoint.from_url(f"{base}/net-{digest[:8]}.pth")
    assert checkpoint.sha256 == digest[:8]
    assert download(checkpoint, progress=False).is_file()


def test_a_wrong_checksum_keeps_nothing(served: tuple[str, Path], cache_dir: Path) -> None:
    base, folder = served
    weights_file(folder, "net.pt")
    checkpoint = Checkpoint(url=f"{base}/net.pt", filename="net.pt", sha256="0" * 64)
    with pytest.raises(DownloadError, match="sha256"):
        download(checkpoint, progress=False)
    assert cached(checkpoint) is None
    assert not any(cache_dir.iterdir())


def test_offline_says_what_to_download_and_where(served: tuple[str, Path], cache_dir: Path) -> None:
    base, _ = served
    with pytest.raises(DownloadError) as missing:
        download(Checkpoint(url=f"{base}/absent.pt", filename="absent.pt"), progress=False)
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(DownloadError) as refused:
        download(Checkpoint(url=f"http://127.0.0.1:{closed}/w.pt", filename="w.pt"), progress=False)
    for error, name in ((missing, "absent.pt"), (refused, "w.pt")):
        message = str(error.value)
        assert "download that file" in message and str(cache_dir / name) in message
        assert "STLENS_CACHE_DIR" in message
    assert cached(Checkpoint(url=f"{base}/absent.pt", filename="absent.pt")) is None


def test_checkpoints_never_unpickle_code(tmp_path: Path) -> None:
    torch.save({"net": torch.nn.Linear(2, 2)}, tmp_path / "module.pt")
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_state_dict(tmp_path / "module.pt")
    torch.save({"nested": {"w": torch.zeros(1)}}, tmp_path / "nested.pt")
    with pytest.raises(ValueError, match="state dict"):
        load_state_dict(tmp_path / "nested.pt")


def test_torchvision_weights_in_the_cache_are_used_and_titled(cache_dir: Path) -> None:
    arch = next(a for a in VIDEO_ARCHITECTURES if a.name == "mc3_18")
    entry_id = f"tv-{arch.name}"
    assert "random weights" in next(e for e in zoo_entries() if e.spec.id == entry_id).spec.title
    torch.manual_seed(1)
    state = arch.builder(num_classes=400).state_dict()
    cache_dir.mkdir()
    torch.save(state, cache_dir / arch.checkpoint.filename)
    entry = next(e for e in zoo_entries() if e.spec.id == entry_id)
    assert "Kinetics-400" in entry.spec.title
    assert torch.equal(entry.build().appearance.stem[0].weight, state["stem.0.weight"])


def test_fetch_refuses_unknown_ids(capsys: pytest.CaptureFixture[str]) -> None:
    assert fetch(["no-such-model"]) == 2
    assert "tv-r3d_18" in capsys.readouterr().err
