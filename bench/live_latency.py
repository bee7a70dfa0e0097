"""Time from pressing Visualise to the first preview and to the result (figures go to docs/benchmarks.md).

    python bench/live_latency.py [--layer logits] [--unit 0] [--steps 128] [--repeats 3]

Starts the real server (embedded Redis in a temporary folder) in this process, then drives the
live WebSocket as the page does: one fresh request per repeat (a new seed, so nothing is cached),
then the same request again to time the cached path. Reports the median of the repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from websockets.sync.client import connect

from stlens.api import create_app
from stlens.config import ServerSettings


def serve(data_dir: Path) -> tuple[uvicorn.Server, threading.Thread, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(ServerSettings(data_dir=data_dir)), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, sock.getsockname()[1]


def drive(url: str, body: dict) -> dict[str, float]:
    """Seconds from sending the request to: accepted, first progress, done; and the progress count."""
    start = time.perf_counter()
    marks: dict[str, float] = {"progress_messages": 0}
    with connect(url, max_size=None) as ws:
        ws.send(json.dumps(body))
        for raw in ws:
            message = json.loads(raw)
            elapsed = time.perf_counter() - start
            kind = message["type"]
            if kind == "progress":
                marks["progress_messages"] += 1
                marks.setdefault("first_progress", elapsed)
            else:
                marks[kind] = elapsed
    if "done" not in marks:
        raise RuntimeError(f"no result: {marks}")
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="synth-conv-fusion")
    parser.add_argument("--layer", default="logits", help="the page's default: the last layer")
    parser.add_argument("--unit", type=int, default=0)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        server, thread, port = serve(Path(data_dir))
        url = f"ws://127.0.0.1:{port}/api/visualizations/live"
        try:
            drive(url, {"model": args.model, "layer": args.layer, "unit": args.unit, "settings": {"steps": 1}})  # load
            fresh, cached = [], []
            for seed in range(1, args.repeats + 1):
                body = {
                    "model": args.model,
                    "layer": args.layer,
                    "unit": args.unit,
                    "settings": {"steps": args.steps, "seed": seed},
                }
                fresh.append(drive(url, body))
                cached.append(drive(url, body))
        finally:
            server.should_exit = True
            thread.join()

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    print(
        f"{args.model} {args.layer} unit {args.unit}, {args.steps} steps, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}, median of {args.repeats}"
    )
    print(
        f"fresh:  accepted {median(fresh, 'accepted'):.3f} s, first preview {median(fresh, 'first_progress'):.3f} s, "
        f"result {median(fresh, 'done'):.2f} s, {median(fresh, 'progress_messages'):.0f} progress messages"
    )
    print(f"cached: accepted {median(cached, 'accepted'):.3f} s, result {median(cached, 'done'):.3f} s")


if __name__ == "__main__":
    main()
