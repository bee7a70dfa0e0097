"""Finished results that Redis could not take, kept on disk until it can (the cache's spill).

While Redis is down a finished result would otherwise live only in the process's memory, and be
lost with it. The spill writes each one as a file of its own (a zip archive whose members are the
fields of the result's Redis hash), atomically (written beside, fsynced, renamed), so a crash
leaves either the whole result or none. It is bounded in results and bytes; when it is full a
result stays in memory only, and the log says so. The cache writes spilled results back to Redis
when it answers again, oldest first, and removes each file once Redis has it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".result.zip"
SAFE_ID = re.compile(r"^[0-9a-f]{8,64}$")  # content ids only: never a path from outside


class ResultSpill:
    """At most ``max_results`` results and ``max_bytes`` bytes in ``folder``; thread-safe."""

    def __init__(self, folder: Path | str, max_results: int = 10_000, max_bytes: int = 2 << 30):
        self.folder = Path(folder)
        self.max_results = max_results
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self.folder.mkdir(parents=True, exist_ok=True)
        for partial in self.folder.glob(f"*{SUFFIX}.part"):  # a write that a crash cut short
            partial.unlink(missing_ok=True)
        self._sizes = {path.name[: -len(SUFFIX)]: path.stat().st_size for path in self._files()}

    def _files(self) -> list[Path]:
        files = [path for path in self.folder.glob(f"*{SUFFIX}") if SAFE_ID.match(path.name[: -len(SUFFIX)])]
        return sorted(files, key=lambda path: path.stat().st_mtime_ns)

    def _path(self, visualization_id: str) -> Path:
        if not SAFE_ID.match(visualization_id):
            raise ValueError(f"not a content id: {visualization_id!r}")
        return self.folder / f"{visualization_id}{SUFFIX}"

    def __len__(self) -> int:
        return len(self._sizes)

    def __contains__(self, visualization_id: object) -> bool:
        return visualization_id in self._sizes

    @property
    def size_bytes(self) -> int:
        return sum(self._sizes.values())

    def ids(self) -> list[str]:
        """The spilled results' ids, oldest first."""
        with self._lock:
            return [path.name[: -len(SUFFIX)] for path in self._files()]

    def put(self, visualization_id: str, fields: dict[str, bytes]) -> bool:
        """Keep ``fields`` (a result's hash) on disk; False if the spill is full."""
        path = self._path(visualization_id)
        need = sum(len(value) for value in fields.values())
        with self._lock:
            if visualization_id not in self._sizes and (
                len(self._sizes) >= self.max_results or self.size_bytes + need > self.max_bytes
            ):
                log.warning("the spill in %s is full; result %s is kept in memory only", self.folder, visualization_id)
                return False
            partial = path.with_name(path.name + ".part")
            with partial.open("wb") as out:
                with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
                    for name, value in fields.items():
                        archive.writestr(name, value)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, path)
            self._sizes[visualization_id] = path.stat().st_size
            return True

    def fields(self, visualization_id: str) -> dict[str, bytes] | None:
        """Every field of a spilled result, or None."""
        try:
            with zipfile.ZipFile(self._path(visualization_id)) as archive:
                return {name: archive.read(name) for name in archive.namelist()}
        except (FileNotFoundError, zipfile.BadZipFile):
            return None

    def get(self, visualization_id: str, name: str) -> bytes | None:
        """One field of a spilled result, or None."""
        try:
            with zipfile.ZipFile(self._path(visualization_id)) as archive:
                return archive.read(name)
        except (FileNotFoundError, KeyError, zipfile.BadZipFile):
            return None

    def remove(self, visualization_id: str) -> None:
        with self._lock:
            self._path(visualization_id).unlink(missing_ok=True)
            self._sizes.pop(visualization_id, None)
