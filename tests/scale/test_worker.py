"""The multi-process mode: API nodes enqueue, ``stlens worker`` processes compute."""

from __future__ import annotations

import json
import signal
import time

import pytest
from api.requests import request
from saq.job import Status
from stlens.engine.settings import MAX_STEPS
from websockets.sync.client import connect

from scale.helpers import live_messages, pid_of, queued_job, wait_for_queue_status

pytestmark = pytest.mark.slow  # each test starts worker processes (seconds each on 2 cores)

STEPS_TO_INTERRUPT = 60  # long enough (some seconds) to be interrupted mid-job


def test_a_worker_runs_the_job_and_streams_progress_to_the_socket(make_server, redis_server, spawn_worker):
    spawn_worker()
    api = make_server(workers="external", redis_url=redis_server.url)
    messages = live_messages(api.ws_url, request(steps=6))
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "accepted" and kinds[-1] == "done" and "progress" in kinds
    done = messages[-1]
    assert done["status"] == "done" and done["result"]["steps"] == 6
    assert api.http.get(done["result"]["inputs"]).status_code == 200
    # the node sees the live workers' capacity: interactive jobs, and background ones besides
    assert (api.services.jobs.capacity, api.services.jobs.background_slots) == (32, 4)


def test_a_job_on_a_killed_worker_is_run_again_on_another(make_server, redis_server, spawn_worker):
    workers = {process.pid: process for process in (spawn_worker(), spawn_worker())}
    api = make_server(workers="external", redis_url=redis_server.url)
    vid = api.http.post("/api/visualizations", json=request(steps=STEPS_TO_INTERRUPT)).json()["id"]
    killed = pid_of(wait_for_queue_status(redis_server.url, vid, Status.ACTIVE))
    workers[killed].send_signal(signal.SIGKILL)
    body = api.wait_done(vid, timeout=120)
    assert body["status"] == "done" and body["result"]["steps"] == STEPS_TO_INTERRUPT
    finished = queued_job(redis_server.url, vid)
    assert finished is not None and finished.attempts >= 2 and pid_of(finished) != killed


def test_a_job_whose_viewers_all_left_is_aborted_and_frees_the_worker(make_server, redis_server, spawn_worker):
    spawn_worker()
    api = make_server(workers="external", redis_url=redis_server.url)
    long_job = request(steps=MAX_STEPS)
    with connect(api.ws_url, open_timeout=60) as ws:
        ws.send(json.dumps(long_job))
        vid = json.loads(ws.recv())["id"]
        while json.loads(ws.recv())["type"] != "progress":
            pass
    wait_for_queue_status(redis_server.url, vid, Status.ABORTED, timeout=10)
    messages = live_messages(api.ws_url, request(steps=4))  # the worker is free again
    assert messages[-1]["type"] == "done"
    assert api.http.get("/api/health").json()["jobs"] == 0


def test_redis_killed_and_restarted_mid_job_loses_nothing(make_server, redis_server, spawn_worker):
    spawn_worker()
    api = make_server(workers="external", redis_url=redis_server.url)
    with connect(api.ws_url, open_timeout=60) as ws:
        ws.send(json.dumps(request(steps=STEPS_TO_INTERRUPT)))
        vid = json.loads(ws.recv())["id"]
        while json.loads(ws.recv())["type"] != "progress":
            pass
        redis_server.process.kill()  # no chance to save: the queue and the job are gone
        redis_server.process.wait()
        time.sleep(1.0)
        redis_server.start()
        last = [json.loads(raw) for raw in ws][-1]
    assert last["type"] == "done" and last["status"] == "done" and last["id"] == vid
    assert api.http.get(last["result"]["inputs"]).status_code == 200


def test_atlas_units_fan_out_over_all_workers(make_server, redis_server, spawn_worker):
    spawn_worker(), spawn_worker()
    api = make_server(workers="external", redis_url=redis_server.url)
    deadline = time.monotonic() + 30
    while api.services.jobs.background_slots < 8:  # the node reads the live workers' capacity from the queue
        assert time.monotonic() < deadline, "the API node never saw both workers"
        time.sleep(0.1)
    body = {"model": "synth-conv-fusion", "layer": "logits", "settings": {"steps": 24}}
    atlas = api.http.post("/api/atlas", json=body).json()
    deadline = time.monotonic() + 180
    while (state := api.http.get(f"/api/atlas/{atlas['id']}").json())["status"] != "done":
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert all(unit["status"] == "done" for unit in state["units"])
    runs = [queued_job(redis_server.url, unit["id"]) for unit in state["units"]]
    assert len({pid_of(run) for run in runs}) == 2  # both workers took units
    spans = sorted((run.started, run.completed) for run in runs)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))  # two units ran at once
