"""The WebSocket /api/visualizations/live: accepted, progress with previews, done; shared jobs."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from typing import Any

from PIL import Image
from websockets.sync.client import connect

from stlens.engine.settings import MAX_STEPS

from .requests import request


def run_live(server, body: dict[str, Any] | str) -> list[dict[str, Any]]:
    """Send one message and collect every answer until the server closes the socket."""
    messages = []
    with connect(server.ws_url, open_timeout=30) as ws:
        ws.send(body if isinstance(body, str) else json.dumps(body))
        for raw in ws:
            messages.append(json.loads(raw))
    return messages


def decode_data_url(url: str) -> Image.Image:
    header, data = url.split(",", 1)
    assert header == "data:image/jpeg;base64"
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_live_run_sends_accepted_progress_then_done(server):
    messages = run_live(server, request(unit=9, steps=8))
    types = [m["type"] for m in messages]
    assert types[0] == "accepted" and types[-1] == "done"
    assert set(types[1:-1]) == {"progress"}
    vid = messages[0]["id"]
    progress = messages[1:-1]
    assert progress[-1]["step"] == progress[-1]["steps"] == 8
    assert [p["step"] for p in progress] == sorted(p["step"] for p in progress)
    for p in progress:
        assert isinstance(p["objective"], float)
        assert (p["frames"], p["height"], p["width"]) == (8, 64, 64)
        assert set(p["previews"]) == {"appearance", "motion"}
        strip = decode_data_url(p["previews"]["motion"])
        assert strip.height == 64 and strip.width > 8 * 64  # the 8 frames side by side
    done = {k: v for k, v in messages[-1].items() if k != "type"}
    assert done == server.http.get(f"/api/visualizations/{vid}").json()


def test_cached_id_goes_from_accepted_straight_to_done(server):
    first = run_live(server, request(unit=10))
    second = run_live(server, request(unit=10))
    assert [m["type"] for m in second] == ["accepted", "done"]
    assert second[0]["id"] == first[0]["id"]
    assert second[1] == first[-1]


def test_a_second_viewer_joins_the_running_job(server):
    body = request(unit=11, steps=40)
    started = server.http.get("/api/health").json()["jobs_started"]
    results: list[list[dict[str, Any]]] = []
    first_accepted = threading.Event()

    def viewer() -> None:
        with connect(server.ws_url, open_timeout=30) as ws:
            ws.send(json.dumps(body))
            messages = [json.loads(ws.recv())]
            first_accepted.set()
            messages += [json.loads(raw) for raw in ws]
        results.append(messages)

    threads = [threading.Thread(target=viewer)]
    threads[0].start()
    assert first_accepted.wait(30)
    threads.append(threading.Thread(target=viewer))
    threads[1].start()
    for t in threads:
        t.join(120)
    assert len(results) == 2
    assert all(m[0]["type"] == "accepted" and m[-1]["type"] == "done" for m in results)
    assert results[0][0]["id"] == results[1][0]["id"]
    assert results[0][-1] == results[1][-1]
    assert server.http.get("/api/health").json()["jobs_started"] == started + 1


def test_http_and_live_requests_share_one_job(server):
    started = server.http.get("/api/health").json()["jobs_started"]
    created = server.http.post("/api/visualizations", json=request(unit=12, steps=20)).json()
    messages = run_live(server, request(unit=12, steps=20))
    assert messages[0]["id"] == created["id"]
    assert messages[-1]["type"] == "done"
    assert server.http.get("/api/health").json()["jobs_started"] == started + 1


def wait_for_no_jobs(server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while server.http.get("/api/health").json()["jobs"]:
        assert time.monotonic() < deadline, "the job was never cancelled"
        time.sleep(0.05)


def test_job_is_cancelled_when_its_only_viewer_leaves(make_server):
    server = make_server()
    with connect(server.ws_url, open_timeout=30) as ws:
        ws.send(json.dumps(request(unit=20, steps=MAX_STEPS)))
        vid = json.loads(ws.recv(timeout=30))["id"]
        assert json.loads(ws.recv(timeout=60))["type"] == "progress"
    wait_for_no_jobs(server)
    assert server.services.jobs.get(vid) is None  # gone, not remembered as failed
    again = run_live(server, request(unit=20, steps=4))  # the same unit with other settings runs normally
    assert again[-1]["type"] == "done"


def test_a_job_asked_for_over_http_survives_its_live_viewer_leaving(server):
    body = request(unit=21, steps=40)
    vid = server.http.post("/api/visualizations", json=body).json()["id"]
    with connect(server.ws_url, open_timeout=30) as ws:
        ws.send(json.dumps(body))
        assert json.loads(ws.recv(timeout=30))["id"] == vid
        assert json.loads(ws.recv(timeout=60))["type"] == "progress"
    assert server.wait_done(vid)["status"] == "done"


def test_new_jobs_are_refused_while_too_many_are_pending(make_server):
    server = make_server(max_pending_jobs=1)
    first = server.http.post("/api/visualizations", json=request(unit=22, steps=MAX_STEPS)).json()
    assert first["status"] in ("queued", "running")
    refused = server.http.post("/api/visualizations", json=request(unit=23))
    assert refused.status_code == 503 and "try again" in refused.json()["detail"]
    assert refused.headers["retry-after"] == "5"
    messages = run_live(server, request(unit=23))
    assert [m["type"] for m in messages] == ["accepted", "error"]
    joined = server.http.post("/api/visualizations", json=request(unit=22, steps=MAX_STEPS)).json()
    assert joined == first | {"status": joined["status"]}  # joining the running job is always allowed


def test_one_client_cannot_fill_the_queue_for_everyone(make_server):
    server = make_server(max_pending_per_client=2, forwarded_allow_ips="127.0.0.1")  # two clients behind a proxy
    alice, bob = {"X-Forwarded-For": "10.0.0.1"}, {"X-Forwarded-For": "10.0.0.2"}
    for unit in (24, 25):
        created = server.http.post("/api/visualizations", json=request(unit=unit, steps=MAX_STEPS), headers=alice)
        assert created.status_code == 202
    third = server.http.post("/api/visualizations", json=request(unit=26), headers=alice)
    assert third.status_code == 429 and "wait for them" in third.json()["detail"]
    assert server.http.post("/api/visualizations", json=request(unit=26), headers=bob).status_code == 202
    joined = server.http.post("/api/visualizations", json=request(unit=24, steps=MAX_STEPS), headers=alice)
    assert joined.status_code == 202  # joining one's own running job is not a new one
