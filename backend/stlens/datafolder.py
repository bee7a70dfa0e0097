"""The server's data folder: checked before anything starts, and held by one server at a time.

Two servers on one folder would run two redis-servers that overwrite each other's files (the last
writer wins), so a server takes an exclusive lock on ``stlens.lock`` in the folder and keeps it for
its lifetime; the kernel drops the lock when the process ends, SIGKILL included, so a crashed
server never blocks the next one. The lock file holds the owner's pid for the error message.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from pathlib import Path

LOCK_NAME = "stlens.lock"


class DataFolderError(ValueError):
    """The data folder cannot be used; the one-line message says why and what to do."""


class DataFolder:
    """``path``, made if missing, checked writable, and locked by :meth:`acquire` until :meth:`release`."""

    def __init__(self, path: Path | str):
        self.path = Path(path).resolve()
        self._lock: int | None = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def acquire(self) -> None:
        """Make and check the folder, then lock it (DataFolderError if it is not writable or in use)."""
        if self._lock is not None:
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path):
                pass
            descriptor = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DataFolderError(
                f"data folder {self.path} is not writable ({exc.strerror or exc}); give a writable --data-dir"
            ) from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(descriptor)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise DataFolderError(f"data folder {self.path} cannot be locked ({exc.strerror})") from None
            raise DataFolderError(
                f"data folder {self.path} is in use by another stlens server (pid {owner}); "
                "give each server its own --data-dir"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        self._lock = descriptor

    def release(self) -> None:
        if self._lock is None:
            return
        os.ftruncate(self._lock, 0)
        os.close(self._lock)  # closing the descriptor drops the lock
        self._lock = None
