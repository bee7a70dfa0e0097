"""The Redis cache: it survives a restart, and the app serves on while Redis is away."""

from __future__ import annotations

import signal
import time

import redis

from .requests import request
from .test_live import run_live


def wait_cache(server, state: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while server.http.get("/api/health").json()["cache"] != state:
        assert time.monotonic() < deadline, f"cache never became {state!r}"
        time.sleep(0.1)


def test_embedded_redis_evicts_least_recently_used(server):
    with redis.Redis(unix_socket_path=str(server.services.embedded_redis.socket_path)) as client:
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert int(client.config_get("maxmemory")["maxmemory"]) > 0


def test_done_result_survives_an_app_restart(make_server, tmp_path):
    data_dir = tmp_path / "shared-var"
    first = make_server(data_dir)
    vid = first.http.post("/api/visualizations", json=request(unit=14)).json()["id"]
    done = first.wait_done(vid)
    npz = first.http.get(done["result"]["inputs"]).content
    first.stop()  # stops the embedded Redis, which saves its data

    second = make_server(data_dir)
    assert second.http.get(f"/api/visualizations/{vid}").json() == done
    assert second.http.get(done["result"]["inputs"]).content == npz
    assert second.http.get(done["result"]["media"]["motion.gif"]).status_code == 200
    assert [m["type"] for m in run_live(second, request(unit=14))] == ["accepted", "done"]
    assert second.http.post("/api/visualizations", json=request(unit=14)).json()["status"] == "done"
    assert second.http.get(f"/v/{vid}").status_code == 200
    assert second.http.get("/api/health").json()["jobs_started"] == 0


def test_redis_killed_mid_run_is_started_again_and_loses_nothing(make_server):
    server = make_server(cache_retry_s=0.2)
    embedded = server.services.embedded_redis
    created = server.http.post("/api/visualizations", json=request(unit=15, steps=30)).json()
    assert created["status"] in ("queued", "running")
    vid = created["id"]
    killed = embedded.process.pid
    embedded.process.send_signal(signal.SIGKILL)  # while the job runs

    done = server.wait_done(vid)
    assert done["status"] == "done"
    assert server.http.get(done["result"]["media"]["appearance.png"]).status_code == 200
    wait_cache(server, "ok")  # the server started it again, on the same socket, by itself
    assert embedded.process.pid != killed and embedded.restarts >= 1
    live = run_live(server, request(unit=16))
    assert live[-1]["type"] == "done"
    pace = server.http.get(f"/api/models/{request()['model']}/pace").json()["seconds_per_step"]
    assert pace["fusion.conv"] > 0
    deadline = time.monotonic() + 30
    with redis.Redis(unix_socket_path=str(embedded.socket_path)) as client:
        for kept in (vid, live[0]["id"]):  # stored, or kept on disk and written back
            while not client.exists(f"stlens:v1:result:{kept}"):
                assert time.monotonic() < deadline, f"{kept} never reached Redis"
                time.sleep(0.1)
            assert client.exists(f"stlens:v1:request:{kept}")


def test_unreachable_external_redis_means_serving_without_cache(make_server):
    server = make_server(redis_url="redis://127.0.0.1:1/0")
    assert server.http.get("/api/health").json()["cache"] == "down"
    assert server.services.embedded_redis is None
    messages = run_live(server, request(unit=18))
    assert messages[-1]["type"] == "done"
    assert server.http.get(f"/api/visualizations/{messages[0]['id']}").json()["status"] == "done"
