"""Work on a daemon thread of its own, as a Future: a process that stops meanwhile does not wait for it
(the eigenclips take half a minute to compute, and a server may be stopped in that time)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future


def in_background(work: Callable[[], None], name: str) -> Future[None]:
    """Start ``work`` now on a daemon thread called ``name``; its Future ends with its result or error."""
    future: Future[None] = Future()

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # whoever holds the Future is told
            future.set_exception(exc)
        else:
            future.set_result(None)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future
