"""Many viewers at once: 50 live clients over 10 distinct requests run exactly 10 jobs, and all get results."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from websockets.sync.client import connect

from .requests import request

CLIENTS = 50
DISTINCT = 10


@pytest.mark.slow
def test_fifty_live_clients_share_ten_jobs(make_server):
    server = make_server()
    bodies = [request(unit=40 + i % DISTINCT, steps=4) for i in range(CLIENTS)]
    results: list[list[dict[str, Any]] | None] = [None] * CLIENTS
    start = threading.Barrier(CLIENTS)

    def client(index: int) -> None:
        with connect(server.ws_url, open_timeout=60) as ws:
            start.wait(timeout=60)
            ws.send(json.dumps(bodies[index]))
            results[index] = [json.loads(raw) for raw in ws]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert all(r is not None and r[0]["type"] == "accepted" and r[-1]["type"] == "done" for r in results)
    ids = {json.dumps(bodies[i], sort_keys=True): set() for i in range(CLIENTS)}
    for body, messages in zip(bodies, results, strict=True):
        ids[json.dumps(body, sort_keys=True)].add(messages[0]["id"])
    assert all(len(found) == 1 for found in ids.values())  # one id a distinct request
    assert len(set().union(*ids.values())) == DISTINCT
    health = server.http.get("/api/health").json()
    assert health["jobs_started"] == DISTINCT and health["jobs"] == 0
