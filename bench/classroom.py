"""A classroom on one server (figures go to docs/benchmarks.md, "Classroom").

    python bench/classroom.py [--clients 30] [--steps 40] [--max-batch 32] [--spread | --layers L ...] [--out FILE.json]

Starts a real ``stlens serve`` process (embedded Redis in a temporary folder, default settings but
the ones given) on loopback and plays the issue's scenario on the built-in conv-fusion model, every
client a browser session of its own from the one address 127.0.0.1:

1. **alone**: one request (unit 0 of fusion.conv) on the idle server: the time of a single run;
2. **one after another**: the clients' requests run one at a time, each waiting for the last;
3. **classroom**: an atlas of another layer (appearance.conv3, 64 units) is started over HTTP, then
   the clients all send their requests at once over the live socket (each a different unit of
   fusion.conv, or with ``--spread`` of fusion.conv, fusion.fc6 and motion.conv3 in turn, or of the
   ``--layers`` given: ``--layers logits`` is a class where everyone opens a class picture, under pca);
4. **one during the atlas**: the single request again (a new seed), while the atlas still runs;
5. the atlas is cancelled; every client's result is looked up (one stored result per id).

Reports, per client, the first message after ``accepted`` (a preview or a ``queued`` message), its
first preview of its own run and its result, as p50 / p95; the total wall time against the one
after another; the single request during the atlas against alone; the machine's load average.
Every scenario uses new seeds, so nothing comes from the cache. Bounded: every wait has a timeout.
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
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

MODEL = "synth-conv-fusion"
LAYERS = ["fusion.conv", "fusion.fc6", "motion.conv3"]
ATLAS_LAYER = "appearance.conv3"
TIMEOUT_S = 900.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "stlens.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen([*command, "--log-level", "warning"], stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not start")


def session(name: str) -> dict[str, str]:
    return {"X-Stlens-Session": f"classroom-{name:0>12}"}


def body(layer: str, unit: int, steps: int, seed: int, param: str | None = None) -> dict[str, Any]:
    """A request; ``param`` None leaves it to the layer (pca at the logits)."""
    settings: dict[str, Any] = {"steps": steps, "seed": seed} | ({"param": param} if param else {})
    return {"model": MODEL, "layer": layer, "unit": unit, "settings": settings}


def live(ws_url: str, request: dict[str, Any], headers: dict[str, str], start: threading.Barrier | None = None
         ) -> dict[str, Any]:
    """One client's run: when each kind of message came, from the moment it sent its request."""
    marks: dict[str, Any] = {"queued_messages": 0, "progress_messages": 0}
    with connect(ws_url, open_timeout=60, close_timeout=5, additional_headers=headers, max_size=2**24) as ws:
        if start is not None:
            start.wait(timeout=120)
        sent = time.perf_counter()
        ws.send(json.dumps(request))
        for raw in ws:
            message = json.loads(raw)
            now = time.perf_counter() - sent
            kind = message["type"]
            if kind == "accepted":
                marks["accepted"], marks["id"] = now, message["id"]
                continue
            marks.setdefault("first_message", now)
            if kind == "queued":
                marks["queued_messages"] += 1
                marks.setdefault("first_queued", {"after_s": now, "position": message["position"],
                                                  "eta_s": message["eta_s"]})
            elif kind == "progress":
                marks["progress_messages"] += 1
                marks.setdefault("first_preview", now)
            elif kind in ("done", "error"):
                marks["end"], marks["outcome"] = now, kind
                marks["detail"] = message.get("detail")
    return marks


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 2), "p95": round(p95, 2), "max": round(ordered[-1], 2)}


def classroom(base: str, requests: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    ws_url = base.replace("http", "ws") + "/api/visualizations/live"
    results: list[dict[str, Any] | None] = [None] * len(requests)
    start = threading.Barrier(len(requests) + 1)

    def client(index: int) -> None:
        results[index] = live(ws_url, requests[index], session(f"student{index}"), start)

    threads = [threading.Thread(target=client, args=(index,), daemon=True) for index in range(len(requests))]
    for thread in threads:
        thread.start()
    start.wait(timeout=120)
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout=TIMEOUT_S)
    wall = time.perf_counter() - began
    if any(r is None for r in results):
        raise RuntimeError("a client did not finish in time")
    return [r for r in results if r is not None], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=30, choices=range(1, 257), metavar="N")
    parser.add_argument("--steps", type=int, default=40, choices=range(1, 1025), metavar="N")
    parser.add_argument("--max-batch", type=int, help="the server's STLENS_MAX_BATCH (1: time-slicing only)")
    parser.add_argument("--torch-threads", type=int, help="the server's STLENS_TORCH_THREADS")
    parser.add_argument("--spread", action="store_true", help="units over three layers instead of one")
    parser.add_argument("--layers", nargs="+", help="the students' layers (units taken in turn, wrapping)")
    parser.add_argument("--param", help="every request's param (unset: the layer's own, pca at the logits)")
    parser.add_argument("--skip-sequential", action="store_true", help="leave out the one-after-another run")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    env = {"STLENS_DEVICE": "cpu"}
    if args.max_batch:
        env["STLENS_MAX_BATCH"] = str(args.max_batch)
    if args.torch_threads is not None:
        env["STLENS_TORCH_THREADS"] = str(args.torch_threads)
    layers = args.layers or (LAYERS if args.spread else LAYERS[:1])
    report: dict[str, Any] = {
        "clients": args.clients, "steps": args.steps, "layers": layers, "param": args.param, "server_env": env
    }
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as folder:
        process, base = start_server(Path(folder), env)
        http = httpx.Client(base_url=base, timeout=60)
        ws_url = base.replace("http", "ws") + "/api/visualizations/live"
        try:
            live(ws_url, body(LAYERS[0], 63, 4, 99), session("warmup"))  # models loaded, speed measured
            units = {layer["id"]: layer["units"] for layer in http.get(f"/api/models/{MODEL}").json()["layers"]}
            for layer in layers:
                live(ws_url, body(layer, 0, 2, 98), session("warmup"))
            alone = live(ws_url, body(LAYERS[0], 0, args.steps, 1), session("alone"))
            report["alone_s"] = round(alone["end"], 2)

            def requests(seed: int) -> list[dict[str, Any]]:
                # a seed each: where the units wrap (the 10 class logits), no two students ask the same
                return [
                    body(layer := layers[i % len(layers)], i // len(layers) % units[layer], args.steps, seed * 1000 + i,
                         args.param)
                    for i in range(args.clients)
                ]

            if not args.skip_sequential:
                began = time.perf_counter()
                for index, request in enumerate(requests(seed=2)):
                    done = live(ws_url, request, session(f"student{index}"))
                    assert done["outcome"] == "done", done
                report["one_after_another_s"] = round(time.perf_counter() - began, 1)
                loads.append(os.getloadavg()[0])

            estimate = http.post("/api/estimates", json={"model": MODEL, "layer": ATLAS_LAYER,
                                                         "settings": {"steps": args.steps, "seed": 3},
                                                         "atlas": True}).json()
            atlas = http.post("/api/atlas", json={"model": MODEL, "layer": ATLAS_LAYER,
                                                  "settings": {"steps": args.steps, "seed": 3}},
                              headers=session("lecturer")).json()
            report["atlas"] = {"layer": ATLAS_LAYER, "units": len(atlas["units"]), "estimate_s": estimate["seconds"],
                               "heavy": estimate["heavy"]}
            time.sleep(2.0)  # the atlas is running
            marks, wall = classroom(base, requests(seed=4))
            loads.append(os.getloadavg()[0])
            during = live(ws_url, body(LAYERS[0], 0, args.steps, 5), session("latecomer"))
            loads.append(os.getloadavg()[0])
            state = http.get(f"/api/atlas/{atlas['id']}").json()
            finished_units = sum(u["status"] == "done" for u in state["units"])
            cancelled = http.delete(f"/api/atlas/{atlas['id']}", headers=session("lecturer"))
            deadline = time.monotonic() + 120
            while http.get("/api/health").json()["jobs"] and time.monotonic() < deadline:
                time.sleep(0.2)
            final = http.get(f"/api/atlas/{atlas['id']}").json()
            ids = [m.get("id") for m in marks]
            stored = [http.get(f"/api/visualizations/{vid}").json()["status"] for vid in ids]
            unit_npz = sum(http.get(f"/api/visualizations/{u['id']}/inputs.npz").status_code == 200
                           for u in final["units"])
        finally:
            http.close()
            process.send_signal(2)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    admitted = [m for m in marks if m.get("outcome") == "done"]
    report.update({
        "admitted": len(admitted),
        "refused": [m.get("detail") for m in marks if m.get("outcome") != "done"],
        "first_message_s": quantiles([m["first_message"] for m in marks]),
        "first_preview_s": quantiles([m["first_preview"] for m in admitted]),
        "result_s": quantiles([m["end"] for m in admitted]),
        "queued_clients": sum(m["queued_messages"] > 0 for m in marks),
        "first_queued_examples": [m["first_queued"] for m in marks if "first_queued" in m][:3],
        "classroom_wall_s": round(wall, 1),
        "during_atlas_s": round(during["end"], 2),
        "during_atlas_vs_alone": round(during["end"] / alone["end"], 2),
        "results_stored": sum(s == "done" for s in stored),
        "distinct_ids": len(set(ids)),
        "atlas_units_done_by_then": finished_units,
        "atlas_cancel": {"status_code": cancelled.status_code, "cancelled": final["cancelled"],
                         "units_stored": unit_npz,
                         "units_done": sum(u["status"] == "done" for u in final["units"])},
        "load_average": [round(x, 1) for x in loads],
        "cpus": os.cpu_count(),
    })
    if "one_after_another_s" in report:
        report["wall_vs_one_after_another"] = round(wall / report["one_after_another_s"], 2)
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
