"""Web security (issue 16): security headers on every answer, foreign hosts refused (DNS rebinding),
sockets only from the server's own pages, share links from the public URL, Redis not published."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from .requests import request

REPOSITORY = Path(__file__).resolve().parents[2]


PAGES_AND_ANSWERS = ["/", "/explain", "/insights", "/static/js/main.js", "/api/health", "/api/models/nope"]


@pytest.mark.parametrize("path", PAGES_AND_ANSWERS)
def test_every_answer_carries_the_security_headers(server, path):
    response = server.http.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self';" in policy and "unsafe-inline" not in policy


def test_the_docs_page_gets_a_policy_that_lets_swagger_ui_run(server):
    policy = server.http.get("/docs").headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in policy and "frame-ancestors 'none'" in policy


@pytest.mark.parametrize("host", ["attacker.example", "127.0.0.1.attacker.example", "localhost.attacker.example"])
def test_a_foreign_host_is_refused_so_dns_rebinding_reads_nothing(server, host):
    for response in (
        server.http.get("/api/models", headers={"Host": host}),
        server.http.post("/api/visualizations", json=request(), headers={"Host": host}),
    ):
        assert response.status_code == 400, response.text
        assert "--allowed-hosts" in response.json()["detail"]
        assert host not in response.headers.get("location", "")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:8000", "[::1]:9", "10.1.2.3"])
def test_addresses_and_localhost_are_always_answered(server, host):
    assert server.http.get("/api/health", headers={"Host": host}).status_code == 200


def test_allowed_hosts_and_the_public_url_add_names(make_server):
    server = make_server(allowed_hosts="lens.example.org, *.lab.example", public_url="https://share.example.net/lens")
    for host in ("lens.example.org", "a.lab.example", "b.c.lab.example", "share.example.net"):
        assert server.http.get("/api/health", headers={"Host": host}).status_code == 200, host
    assert server.http.get("/api/health", headers={"Host": "lab.example.evil"}).status_code == 400


def test_share_links_come_from_the_public_url_not_the_request(make_server):
    server = make_server(public_url="https://share.example.net/lens", allowed_hosts="other.example")
    created = server.http.post("/api/visualizations", json=request(), headers={"Host": "other.example"}).json()
    assert created["share_url"].startswith(f"https://share.example.net/lens/v/{created['id']}?")


def test_without_a_public_url_share_links_use_the_checked_host(server):
    created = server.http.post("/api/visualizations", json=request()).json()
    assert created["share_url"].startswith(f"{server.base_url}/v/{created['id']}?")


@pytest.mark.parametrize("origin", ["http://attacker.example", "null", "http://127.0.0.1:1", "file://"])
def test_sockets_refuse_pages_of_other_origins(server, origin):
    for path in ("/api/visualizations/live", "/api/atlas/live"):
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{server.port}{path}", origin=origin, open_timeout=30)
        assert refused.value.response.status_code == 403


def test_sockets_accept_the_servers_own_pages_and_clients_without_an_origin(server):
    for origin in (server.base_url, None):
        with connect(server.ws_url, origin=origin, open_timeout=30) as ws:
            ws.send('{"model": "nope", "layer": "x", "unit": 0}')
            assert '"error"' in ws.recv(timeout=30)


def test_compose_does_not_publish_redis():
    services = yaml.safe_load((REPOSITORY / "docker-compose.yml").read_text())["services"]
    assert "ports" not in services["redis"]
    assert services["api"]["ports"] == ["8000:8000"]

