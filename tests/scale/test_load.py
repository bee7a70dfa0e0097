"""Many viewers on two API nodes and two workers: every client gets its result, each distinct
request runs once, whichever node its viewers are on."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from api.requests import request
from stlens.queue import protocol
from websockets.sync.client import connect

from scale.helpers import redis_count

CLIENTS = 30
DISTINCT = 10


@pytest.mark.slow
def test_thirty_clients_on_two_nodes_share_ten_jobs_run_by_two_workers(make_server, redis_server, spawn_worker):
    spawn_worker()
    spawn_worker()
    nodes = [make_server(workers="external", redis_url=redis_server.url) for _ in range(2)]
    bodies = [request(unit=40 + i % DISTINCT, steps=4) for i in range(CLIENTS)]
    results: list[list[dict[str, Any]] | None] = [None] * CLIENTS
    start = threading.Barrier(CLIENTS)

    def client(index: int) -> None:
        with connect(nodes[index % 2].ws_url, open_timeout=60) as ws:
            start.wait(timeout=60)
            ws.send(json.dumps(bodies[index]))
            results[index] = [json.loads(raw) for raw in ws]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert all(r is not None and r[0]["type"] == "accepted" and r[-1]["type"] == "done" for r in results)
    ids = {r[0]["id"] for r in results if r is not None}
    assert len(ids) == DISTINCT
    assert redis_count(redis_server.url, protocol.RUNS_KEY) == DISTINCT
    assert all(node.http.get("/api/health").json()["jobs"] == 0 for node in nodes)
