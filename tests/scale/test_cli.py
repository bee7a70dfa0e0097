"""The scale-out flags: both sides refuse to start without the Redis they would share."""

from __future__ import annotations

import pytest
from stlens.cli import main


@pytest.mark.parametrize(
    "argv",
    [["worker", "--device", "cpu"], ["serve", "--workers", "external", "--device", "cpu"]],
    ids=["worker", "serve-external"],
)
def test_needs_a_redis_url(argv, capsys, monkeypatch):
    monkeypatch.delenv("STLENS_REDIS_URL", raising=False)
    assert main(argv) == 2
    assert "--redis-url" in capsys.readouterr().err
