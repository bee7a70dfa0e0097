"""Checkpoint downloads: one cache folder, a progress bar, a sha256 check, a clear offline message.

Listing models never touches the network: a zoo entry only asks whether its checkpoint is
already in the cache (:func:`cached`). Downloading is an explicit step (``python -m
stlens.models.zoo fetch ID``) so that a machine without internet still lists and runs every
model, with random weights, and says what to download and where to put it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tqdm import tqdm

CHUNK_BYTES = 1 << 20
MAX_CHECKPOINT_BYTES = 4 << 30  # nothing in the zoo is near 4 GiB; bounds a runaway download
HASH_IN_FILENAME = re.compile(r"-([a-f0-9]{8,64})\.")


class CacheSettings(BaseSettings):
    """Where checkpoints are kept: env ``STLENS_CACHE_DIR``, default ``~/.cache/stlens``."""

    model_config = SettingsConfigDict(env_prefix="STLENS_", extra="ignore")

    cache_dir: Path = Path("~/.cache/stlens")


def cache_dir() -> Path:
    """The checkpoint folder, read from the environment on each call so tests can redirect it."""
    return CacheSettings().cache_dir.expanduser()


class Checkpoint(BaseModel):
    """A downloadable state dict: where it comes from, its file name in the cache, its digest."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(pattern=r"^https?://")
    filename: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
    sha256: str | None = Field(
        default=None,
        pattern=r"^[a-f0-9]{8,64}$",
        description="full hex digest or a prefix of it (torchvision names files by an 8+ digit prefix); "
        "None where no published digest is known",
    )

    @classmethod
    def from_url(cls, url: str) -> Checkpoint:
        """A checkpoint named like torchvision's (``name-<sha256 prefix>.pth``): the digest is in the name."""
        filename = url.rsplit("/", 1)[-1]
        match = HASH_IN_FILENAME.search(filename)
        return cls(url=url, filename=filename, sha256=match.group(1) if match else None)

    @property
    def path(self) -> Path:
        return cache_dir() / self.filename

    def offline_message(self, reason: str) -> str:
        return (
            f"could not download {self.url} ({reason}). On a machine with internet, download that file "
            f"and put it at {self.path} (the folder is set by STLENS_CACHE_DIR); until then the model "
            "runs with random weights."
        )


class DownloadError(RuntimeError):
    """A checkpoint could not be fetched or failed its checksum; the message says what to do."""


def cached(checkpoint: Checkpoint) -> Path | None:
    """The checkpoint's file in the cache, or None. Never downloads."""
    path = checkpoint.path
    return path if path.is_file() else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def download(checkpoint: Checkpoint, *, progress: bool = True, timeout_s: float = 30.0) -> Path:
    """Fetch ``checkpoint`` into the cache (no-op when present) and verify its sha256.

    The file is written beside its final name and renamed only once complete and verified, so
    an interrupted or corrupt download never looks cached.
    """
    target = checkpoint.path
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(checkpoint.url, timeout=timeout_s) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            if total is not None and total > MAX_CHECKPOINT_BYTES:
                raise DownloadError(f"{checkpoint.url} is {total} bytes, over the {MAX_CHECKPOINT_BYTES} limit")
            received = 0
            with (
                partial.open("wb") as out,
                tqdm(total=total, unit="B", unit_scale=True, desc=checkpoint.filename, disable=not progress) as bar,
            ):
                while chunk := response.read(CHUNK_BYTES):
                    received += len(chunk)
                    if received > MAX_CHECKPOINT_BYTES:
                        raise DownloadError(f"{checkpoint.url} is over the {MAX_CHECKPOINT_BYTES} byte limit")
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(checkpoint.offline_message(str(reason))) from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    actual = digest.hexdigest()
    if checkpoint.sha256 is not None and not actual.startswith(checkpoint.sha256):
        partial.unlink(missing_ok=True)
        raise DownloadError(
            f"{checkpoint.url} has sha256 {actual}, expected {checkpoint.sha256}...: the file was not kept"
        )
    shutil.move(partial, target)
    return target


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a checkpoint file: tensors only, never pickled code."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return state
