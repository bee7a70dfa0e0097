"""``stlens serve`` as a user runs it: a real process, ready when /api/health answers 200."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from stlens.cli import build_parser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_flags_parse_as_in_the_contract():
    argv = [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--models",
        "m.toml",
        "--redis-url",
        "redis://h:1/0",
        "--device",
        "cpu",
        "--data-dir",
        "d",
    ]
    args = build_parser(argv).parse_args(argv)
    assert (args.host, args.port, args.models, args.redis_url, args.device, args.data_dir) == (
        "127.0.0.1",
        8123,
        "m.toml",
        "redis://h:1/0",
        "cpu",
        "d",
    )
    with pytest.raises(SystemExit):
        build_parser(["serve", "--device", "tpu"]).parse_args(["serve", "--device", "tpu"])


@pytest.mark.slow
def test_stlens_serve_starts_answers_and_stops_its_redis(tmp_path: Path):
    port = free_port()
    data_dir = tmp_path / "var"
    command = [
        sys.executable,
        "-m",
        "stlens.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--device",
        "cpu",
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "STLENS_TORCH_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read().decode()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "stlens serve never became ready"
            time.sleep(0.2)
        assert health.json()["cache"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/api/models").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    log = (data_dir / "redis" / "redis.log").read_text()
    assert "ready to exit" in log  # the embedded Redis was shut down with the app
    assert (data_dir / "redis" / "stlens.rdb").exists()


@pytest.mark.parametrize(
    ("command", "module"), [("train", "stlens.synth.train"), ("export-dataset", "stlens.synth.export")]
)
def test_delegated_subcommands_are_wired_to_their_modules(command, module, tmp_path):
    argv = [command] if command == "train" else [command, str(tmp_path)]
    args = build_parser(argv).parse_args(argv)
    assert args.run.__module__ == module
