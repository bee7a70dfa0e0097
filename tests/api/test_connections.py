"""The socket attacks of issue 16, from raw sockets on loopback: clients that never read, too many
sockets, half-sent headers, and ``X-Forwarded-For`` from anyone. Every loop is bounded."""

from __future__ import annotations

import base64
import json
import os
import socket
import time

import httpx
import psutil

from .requests import request
from .test_live import run_live

NEVER_READING_CLIENTS = 200
PER_CLIENT = 64


def server_side_sockets(server) -> int:
    """Open TCP connections on the server's port, counted at the server's end (it runs in this process)."""
    return sum(
        1
        for c in psutil.Process(os.getpid()).net_connections(kind="tcp")
        if c.laddr and c.laddr.port == server.port and c.status == psutil.CONN_ESTABLISHED
    )


def wait_until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.1)


def raw_socket(server, receive_buffer: int | None = None) -> socket.socket:
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    raw.settimeout(30)
    raw.connect(("127.0.0.1", server.port))
    return raw


def read_response_head(raw: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = raw.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def open_live_without_reading(server, body: dict) -> tuple[socket.socket, bytes]:
    """A WebSocket handshake and one request message, by hand; then this client never reads again."""
    raw = raw_socket(server, receive_buffer=4096)
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        f"GET /api/visualizations/live HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = read_response_head(raw)
    if head.startswith(b"HTTP/1.1 101"):
        payload = json.dumps(body).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        raw.sendall(bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big") + mask + masked)
    return raw, head


def test_clients_that_never_read_are_capped_then_dropped_and_others_are_served(make_server):
    server = make_server(max_connections_per_client=PER_CLIENT, stalled_send_s=2.0, send_buffer_bytes=4096)
    body = request(unit=2, steps=400)
    opened = [open_live_without_reading(server, body) for _ in range(NEVER_READING_CLIENTS)]
    try:
        statuses = [head.split(b" ", 2)[1] for _, head in opened]
        assert statuses.count(b"101") == PER_CLIENT and statuses.count(b"429") == NEVER_READING_CLIENTS - PER_CLIENT
        wait_until(lambda: server_side_sockets(server) == 0, "every client that does not read dropped")
    finally:
        for raw, _ in opened:
            raw.close()
    wait_until(lambda: server.http.get("/api/health").json()["jobs"] == 0, "their job cancelled")
    assert run_live(server, request(unit=2, steps=4))[-1]["type"] == "done"


def test_a_cap_on_open_sockets_in_all(make_server):
    server = make_server(max_connections=8)
    sockets = [raw_socket(server) for _ in range(8)]
    try:
        wait_until(lambda: server_side_sockets(server) == 8, "eight sockets open")
        extra = raw_socket(server)
        extra.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response_head(extra).startswith(b"HTTP/1.1 503")
        extra.close()
    finally:
        for raw in sockets:
            raw.close()
    wait_until(lambda: server.http.get("/api/health").status_code == 200, "served again once they closed")


def test_half_sent_headers_and_silent_connections_time_out(make_server):
    server = make_server(header_timeout_s=1.0)
    half, silent = raw_socket(server), raw_socket(server)
    try:
        half.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        for raw in (half, silent):
            assert read_response_head(raw).startswith(b"HTTP/1.1 408")
        wait_until(lambda: server_side_sockets(server) == 0, "both closed by the server")
    finally:
        half.close()
        silent.close()


def test_headers_over_the_limit_are_431(server):
    raw = raw_socket(server)
    try:
        raw.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for _ in range(100):
                raw.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert read_response_head(raw).startswith(b"HTTP/1.1 431")
    finally:
        raw.close()


def slow_requests(server, count: int) -> list[int]:
    """``count`` distinct long requests, each from a different ``X-Forwarded-For``; their statuses."""
    statuses = []
    for index in range(count):
        response = server.http.post(
            "/api/visualizations",
            json=request(unit=index, steps=1024),
            headers={"X-Forwarded-For": f"203.0.113.{index + 1}"},
        )
        statuses.append(response.status_code)
    return statuses


def test_x_forwarded_for_is_not_believed_from_an_untrusted_peer(make_server):
    server = make_server(max_pending_per_client=4)
    assert slow_requests(server, 5) == [202, 202, 202, 202, 429]  # all one client: 127.0.0.1


def test_x_forwarded_for_is_believed_from_a_configured_proxy(make_server):
    server = make_server(max_pending_per_client=4, forwarded_allow_ips="127.0.0.1")
    assert slow_requests(server, 5) == [202] * 5  # five clients behind the proxy
    response = httpx.get(f"{server.base_url}/api/health", headers={"X-Forwarded-For": "198.51.100.7"})
    assert response.status_code == 200
