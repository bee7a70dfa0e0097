"""Many viewers at once: 50 live clients over 10 distinct requests run exactly 10 jobs, and all get results."""

from __future__ import annotations

import json

import pytest

from .requests import live_clients, request

CLIENTS = 50
DISTINCT = 10


@pytest.mark.slow
def test_fifty_live_clients_share_ten_jobs(make_server):
    server = make_server()
    bodies = [request(unit=40 + i % DISTINCT, steps=4) for i in range(CLIENTS)]
    results = live_clients([server.ws_url], bodies)
    ids = {json.dumps(bodies[i], sort_keys=True): set() for i in range(CLIENTS)}
    for body, messages in zip(bodies, results, strict=True):
        ids[json.dumps(body, sort_keys=True)].add(messages[0]["id"])
    assert all(len(found) == 1 for found in ids.values())  # one id a distinct request
    assert len(set().union(*ids.values())) == DISTINCT
    health = server.http.get("/api/health").json()
    assert health["jobs_started"] == DISTINCT and health["jobs"] == 0
