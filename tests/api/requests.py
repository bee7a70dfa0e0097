"""Small visualisation requests for tests (few steps, so each job takes a fraction of a second), and
many live clients sending them at once."""

from __future__ import annotations

import json
import threading
from typing import Any

from websockets.sync.client import connect

MODEL = "synth-conv-fusion"


def request(
    layer: str = "fusion.conv", unit: int = 3, steps: int = 6, model: str = MODEL, **settings: Any
) -> dict[str, Any]:
    return {"model": model, "layer": layer, "unit": unit, "settings": {"steps": steps, **settings}}


def live_clients(ws_urls: list[str], bodies: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """One live WebSocket client a body (on ``ws_urls`` in turn), all sending at the same moment;
    every client's messages, checked to run from ``accepted`` to ``done``."""
    results: list[list[dict[str, Any]] | None] = [None] * len(bodies)
    start = threading.Barrier(len(bodies))

    def client(index: int) -> None:
        with connect(ws_urls[index % len(ws_urls)], open_timeout=60) as ws:
            start.wait(timeout=60)
            ws.send(json.dumps(bodies[index]))
            results[index] = [json.loads(raw) for raw in ws]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert all(r is not None and r[0]["type"] == "accepted" and r[-1]["type"] == "done" for r in results)
    return results  # type: ignore[return-value]  (every entry was checked above)
