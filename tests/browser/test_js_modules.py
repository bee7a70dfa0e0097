"""Runs the unit tests of the frontend's pure ES modules with Node's built-in test runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE = shutil.which("node")
TESTS = sorted((Path(__file__).parent / "js").glob("*.test.mjs"))


@pytest.mark.skipif(
    NODE is None, reason="node is not installed (apt-get install nodejs)"
)
@pytest.mark.parametrize("path", TESTS, ids=[p.name for p in TESTS])
def test_frontend_modules(path: Path) -> None:
    run = subprocess.run(
        [NODE, "--test", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
