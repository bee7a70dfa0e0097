"""Load: N live clients at once over K distinct requests (figures go to docs/reliability.md).

    python bench/load.py [--clients 50] [--distinct 10] [--steps 32] [--workers 0]

Starts the real server (embedded Redis in a temporary folder), opens every WebSocket first, then
sends all requests together and reports p50 / p95 time to accepted, first progress and result,
and how many jobs ran (it should be exactly ``--distinct``). ``--workers N`` (N > 0) measures the
multi-process mode: the server started with ``--workers external`` and N ``stlens worker``
processes (one torch thread each) on the same Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import redis
import uvicorn
from stlens.api import create_app
from stlens.redis_server import EmbeddedRedis
from stlens.config import ServerSettings
from stlens.queue import protocol
from websockets.sync.client import connect


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def serve(settings: ServerSettings) -> tuple[uvicorn.Server, threading.Thread, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, sock.getsockname()[1]


def start_workers(stack: ExitStack, redis_url: str, count: int) -> None:
    """``count`` worker processes, waited for until they take jobs, stopped when ``stack`` closes."""
    for _ in range(count):
        command = [sys.executable, "-m", "stlens.cli", "worker", "--redis-url", redis_url]
        process = subprocess.Popen([*command, "--device", "cpu", "--torch-threads", "1", "--log-level", "warning"])
        stack.callback(process.wait, 30)
        stack.callback(process.terminate)
        key = protocol.worker_info_key(protocol.worker_id(socket.gethostname(), process.pid))
        with redis.Redis.from_url(redis_url) as client:
            while not client.exists(key):
                if process.poll() is not None:
                    raise RuntimeError("a worker did not start")
                time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--distinct", type=int, default=10)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--model", default="synth-conv-fusion")
    parser.add_argument("--layer", default="fusion.conv")
    parser.add_argument("--workers", type=int, default=0, help="0: in-process jobs; N: N stlens worker processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir, ExitStack() as stack:
        settings = ServerSettings(data_dir=Path(data_dir))
        if args.workers:
            embedded = EmbeddedRedis(Path(data_dir) / "redis")
            embedded.start()
            stack.callback(embedded.close)
            start_workers(stack, embedded.url, args.workers)
            settings = ServerSettings(data_dir=Path(data_dir), workers="external", redis_url=embedded.url)
        server, thread, port = serve(settings)
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
            jobs_run = httpx.get(f"http://127.0.0.1:{port}/api/health").json()["jobs_started"]
            if args.workers:
                with redis.Redis.from_url(settings.redis_url or "") as client:
                    jobs_run = int(client.get(protocol.RUNS_KEY) or 0)
        finally:
            server.should_exit = True
            thread.join()

    done = [m for m in marks if "done" in m]
    mode = f"{args.workers} worker processes" if args.workers else "in-process jobs"
    print(
        f"{args.clients} clients over {args.distinct} requests ({args.model} {args.layer}, {args.steps} steps), "
        f"{mode}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"results: {len(done)}/{args.clients}, jobs run: {jobs_run}, wall {wall:.1f} s")
    for kind, label in (("accepted", "accepted"), ("progress", "first progress"), ("done", "result")):
        values = [m[kind] for m in marks if kind in m]
        print(
            f"{label:15} p50 {percentile(values, 50):7.3f} s   p95 {percentile(values, 95):7.3f} s   (n={len(values)})"
        )


if __name__ == "__main__":
    main()
