"""A server's first start on a machine without stored eigenclips (figures go to docs/benchmarks.md).

    python bench/first_start.py [--steps 128]

Starts the real server in this process with an empty eigenclip cache (a temporary STLENS_CACHE_DIR)
and embedded Redis in a temporary folder, then sends a class-logit request (its default `pca` waits
for the built-in model's eigenclips, computed now) and, 0.5 s later, a `fusion.conv` request (which
needs none). Reports when each was accepted, first heard of (the logits one's `queued` messages say
why it waits), first previewed and finished: the hidden-layer run must not wait for the eigenclips.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from live_latency import serve  # bench/live_latency.py, beside this file
from websockets.sync.client import connect

MODEL = "synth-conv-fusion"


def drive(url: str, body: dict[str, Any], marks: dict[str, Any]) -> None:
    """Seconds from sending ``body`` to each kind of message; the first ``queued`` message's reason."""
    start = time.perf_counter()
    with connect(url, max_size=None, open_timeout=60) as ws:
        ws.send(json.dumps(body))
        for raw in ws:
            message = json.loads(raw)
            kind = message["type"]
            marks.setdefault(kind, round(time.perf_counter() - start, 2))
            if kind == "queued":
                marks.setdefault("reason", message.get("reason"))
                marks["queued_messages"] = marks.get("queued_messages", 0) + 1
            if kind in ("done", "error"):
                marks[kind] = round(time.perf_counter() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as data:
        os.environ["STLENS_CACHE_DIR"] = cache  # no stored eigenclips: they are computed on this start
        load = os.getloadavg()[0]
        server, thread, port = serve(Path(data))
        url = f"ws://127.0.0.1:{port}/api/visualizations/live"
        marks: dict[str, dict[str, Any]] = {"logits": {}, "fusion.conv": {}}
        clients = []
        for layer, delay in (("logits", 0.0), ("fusion.conv", 0.5)):
            time.sleep(delay)
            body = {"model": MODEL, "layer": layer, "unit": 0, "settings": {"steps": args.steps}}
            clients.append(threading.Thread(target=drive, args=(url, body, marks[layer])))
            clients[-1].start()
        for client in clients:
            client.join(timeout=600)
        server.should_exit = True
        thread.join(timeout=60)
    print(json.dumps({"steps": args.steps, "load_at_start": round(load, 2), "cpus": os.cpu_count(), **marks}, indent=2))


if __name__ == "__main__":
    main()
