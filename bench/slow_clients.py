"""Clients that never read: ``python bench/slow_clients.py [--clients 200] [--stalled-send-s 30]``.

Starts ``stlens serve`` (default settings but the ones given), opens ``--clients`` live sockets from
loopback that each send one long request and then never read, and reports every second how many the
server still holds and the kernel's TCP buffer memory (``/proc/net/sockstat``), until it holds none.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

PAGE = os.sysconf("SC_PAGE_SIZE")


def tcp_memory_bytes() -> int:
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("mem") + 1]) * PAGE
    return 0


def held(server_pid: int, port: int) -> int:
    connections = psutil.Process(server_pid).net_connections(kind="tcp")
    return sum(1 for c in connections if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED)


def never_reading(port: int, body: dict) -> tuple[socket.socket, bytes]:
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(30)
    raw.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        f"GET /api/visualizations/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head and (chunk := raw.recv(1024)):
        head += chunk
    if head.startswith(b"HTTP/1.1 101"):
        payload, mask = json.dumps(body).encode(), os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        raw.sendall(bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big") + mask + masked)
    return raw, head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--stalled-send-s", type=float, default=30.0)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = tempfile.mkdtemp(prefix="stlens-slow-")
    env = {**os.environ, "STLENS_STALLED_SEND_S": str(args.stalled_send_s), "STLENS_TORCH_THREADS": "1"}
    command = [sys.executable, "-m", "stlens.cli", "serve", "--port", str(port), "--data-dir", data, "--device", "cpu"]
    server = subprocess.Popen([*command, "--log-level", "warning"], env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        baseline = tcp_memory_bytes()
        rss = psutil.Process(server.pid).memory_info().rss
        body = {"model": "synth-conv-fusion", "layer": "fusion.conv", "unit": 2, "settings": {"steps": 1024}}
        opened = [never_reading(port, body) for _ in range(args.clients)]
        refused = sum(1 for _, head in opened if not head.startswith(b"HTTP/1.1 101"))
        print(f"{args.clients} clients, {args.clients - refused} accepted, {refused} refused at once; "
              f"load average {os.getloadavg()[0]:.1f}")
        start = time.monotonic()
        peak_tcp, peak_rss = 0, 0
        while (still := held(server.pid, port)) and time.monotonic() - start < 10 * args.stalled_send_s:
            peak_tcp = max(peak_tcp, tcp_memory_bytes() - baseline)
            peak_rss = max(peak_rss, psutil.Process(server.pid).memory_info().rss - rss)
            grown = (tcp_memory_bytes() - baseline) / 2**20
            print(f"{time.monotonic() - start:5.1f} s: {still} held, kernel TCP buffers +{grown:.1f} MiB")
            time.sleep(1)
        print(
            f"all dropped after {time.monotonic() - start:.1f} s; peak kernel TCP buffers "
            f"+{peak_tcp / 2**20:.1f} MiB, peak server memory +{peak_rss / 2**20:.1f} MiB"
        )
        for raw, _ in opened:
            raw.close()
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
