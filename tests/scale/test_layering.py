"""A GPU worker loads the computation and the queue, never the web layer (docs/architecture.md)."""

from __future__ import annotations

import json
import subprocess
import sys

# Start a worker as `stlens worker` does (the CLI imports its module, it builds its registry and
# saq worker), then run one job's whole computation: every module a worker ever needs is loaded.
WORKER_RUN = """
import json, sys, threading
from stlens.cli import build_parser
from stlens.config import ServerSettings
from stlens.queue import worker

build_parser(["worker"])
settings = ServerSettings(device="cpu", torch_threads=1)
context = worker.WorkerContext(settings, "redis://127.0.0.1:9")
worker.make_workers(settings, "redis://127.0.0.1:9", 1)
asked = worker.VisualizationRequest(model="synth-conv-fusion", layer="fusion.conv", unit=0, settings={"steps": 2})
finished = threading.Event()

class Sink:
    def queued(self, position, eta_s): pass
    def started(self): pass
    def progress(self, message): pass
    def finished(self, output):
        worker.ResultRecord(request=asked, result=output.result)
        finished.set()
    def failed(self, error): raise SystemExit(repr(error))

context.stepper.submit(worker.Run(worker.resolve(context.registry, asked), "test", "interactive", Sink(), 0.1))
assert finished.wait(120)
context.stepper.close()
print(json.dumps(sorted(sys.modules)))
"""


def test_the_worker_imports_nothing_of_the_web_layer():
    done = subprocess.run([sys.executable, "-c", WORKER_RUN], capture_output=True, text=True, timeout=300, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "stlens.queue.worker" in loaded and "stlens.engine" in loaded  # it did load the worker's own graph
    web = [name for name in loaded if name.split(".")[0] in ("fastapi", "starlette") or name.startswith("stlens.api")]
    assert web == []
