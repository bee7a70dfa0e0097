"""``stlens serve`` as a user runs it: a real process, ready when /api/health answers 200."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from serve_process import stlens_serve
from stlens.cli import build_parser


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
    data_dir = tmp_path / "var"
    with stlens_serve(data_dir, "--device", "cpu", STLENS_TORCH_THREADS="1") as served:
        assert httpx.get(f"{served.base_url}/api/health").json()["cache"] == "ok"
        assert httpx.get(f"{served.base_url}/api/models").status_code == 200
    assert served.process.returncode == 0  # a clean stop on SIGINT
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
