"""Load: N live clients at once over K distinct requests (figures go to docs/reliability.md).

    python bench/load.py [--clients 50] [--distinct 10] [--steps 32]

Starts the real server (embedded Redis in a temporary folder), opens every WebSocket first, then
sends all requests together and reports p50 / p95 time to accepted, first progress and result,
and how many jobs the server ran (it should be exactly ``--distinct``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from live_latency import serve
from websockets.sync.client import connect


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--distinct", type=int, default=10)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--model", default="synth-conv-fusion")
    parser.add_argument("--layer", default="fusion.conv")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        server, thread, port = serve(Path(data_dir))
        url = f"ws://127.0.0.1:{port}/api/visualizations/live"
        marks: list[dict[str, float]] = [{} for _ in range(args.clients)]
        barrier = threading.Barrier(args.clients)

        def client(index: int) -> None:
            body = {
                "model": args.model,
                "layer": args.layer,
                "unit": index % args.distinct,
                "settings": {"steps": args.steps},
            }
            with connect(url, open_timeout=60, max_size=None) as ws:
                barrier.wait()
                start = time.perf_counter()
                ws.send(json.dumps(body))
                for raw in ws:
                    kind = json.loads(raw)["type"]
                    marks[index].setdefault(kind, time.perf_counter() - start)

        try:
            httpx.get(f"http://127.0.0.1:{port}/api/models/{args.model}", timeout=60)  # load the model first
            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            wall = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - wall
            health = httpx.get(f"http://127.0.0.1:{port}/api/health").json()
        finally:
            server.should_exit = True
            thread.join()

    done = [m for m in marks if "done" in m]
    print(
        f"{args.clients} clients over {args.distinct} requests ({args.model} {args.layer}, {args.steps} steps), "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"results: {len(done)}/{args.clients}, jobs run: {health['jobs_started']}, wall {wall:.1f} s")
    for kind, label in (("accepted", "accepted"), ("progress", "first progress"), ("done", "result")):
        values = [m[kind] for m in marks if kind in m]
        print(
            f"{label:15} p50 {percentile(values, 50):7.3f} s   p95 {percentile(values, 95):7.3f} s   (n={len(values)})"
        )


if __name__ == "__main__":
    main()
