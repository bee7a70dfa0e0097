"""Many viewers on two API nodes and two workers: every client gets its result, each distinct
request runs once, whichever node its viewers are on."""

from __future__ import annotations

import pytest
from api.requests import live_clients, request
from stlens.queue import protocol

from scale.helpers import redis_count

CLIENTS = 30
DISTINCT = 10


@pytest.mark.slow
def test_thirty_clients_on_two_nodes_share_ten_jobs_run_by_two_workers(make_server, redis_server, spawn_worker):
    spawn_worker()
    spawn_worker()
    nodes = [make_server(workers="external", redis_url=redis_server.url) for _ in range(2)]
    bodies = [request(unit=40 + i % DISTINCT, steps=4) for i in range(CLIENTS)]
    results = live_clients([node.ws_url for node in nodes], bodies)
    ids = {r[0]["id"] for r in results}
    assert len(ids) == DISTINCT
    assert redis_count(redis_server.url, protocol.RUNS_KEY) == DISTINCT
    assert all(node.http.get("/api/health").json()["jobs"] == 0 for node in nodes)
