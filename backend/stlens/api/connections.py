"""Connections: uvicorn's HTTP and WebSocket protocols with the bounds that a hostile or careless
client cannot get past, and the uvicorn configuration that uses them.

- **Open sockets** are capped per client address (429) and in all (503), counted from the moment a
  connection is made, WebSockets included, so a client cannot hold the server's file descriptors.
  The addresses of trusted proxies (``--forwarded-allow-ips``) are exempt: their clients are told
  apart by ``X-Forwarded-For`` further in.
- **Headers** must arrive whole within ``header_timeout_s`` of a connection (or of the previous
  response on a kept-alive one) and within ``MAX_HEADER_BYTES``; else 408 or 431, and the connection
  is closed. uvicorn itself waits forever for a half-sent request.
- **Clients that do not read** are dropped: the kernel's send buffer of each socket is bounded, and
  a connection with data waiting to be sent that the client has not taken any of for
  ``stalled_send_s`` is aborted (its buffers freed at once), whatever the application is doing.
  uvicorn only closes such a connection, which waits for the buffer to drain: forever.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from ..config import ServerSettings

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
STALL_CHECKS = 4  # checks of a connection's send buffer per stalled_send_s


@dataclass
class ConnectionGuard:
    """The bounds and the count of open connections, shared by every connection of one server."""

    per_client: int
    total: int
    header_timeout_s: float
    stalled_send_s: float
    send_buffer_bytes: int
    trusted: tuple[str, ...]
    _open: dict[int, str] = field(default_factory=dict)  # id(transport) -> client address
    _by_client: Counter[str] = field(default_factory=Counter)

    def is_trusted(self, address: str) -> bool:
        if "*" in self.trusted:
            return True
        for entry in self.trusted:
            try:
                if ipaddress.ip_address(address) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                if address == entry:  # e.g. a unix socket's name
                    return True
        return False

    def admit(self, transport: asyncio.BaseTransport, address: str) -> tuple[int, str] | None:
        """Count a new connection; None if it may stay, else the status and reason to refuse it with."""
        if id(transport) in self._open:
            return None
        if len(self._open) >= self.total:
            return 503, f"the server has {len(self._open)} connections open, its limit; try again in a few seconds"
        if not self.is_trusted(address) and self._by_client[address] >= self.per_client:
            return 429, f"your address has {self._by_client[address]} connections open, the limit; close some"
        self._open[id(transport)] = address
        self._by_client[address] += 1
        return None

    def release(self, transport: asyncio.BaseTransport) -> None:
        address = self._open.pop(id(transport), None)
        if address is not None:
            self._by_client[address] -= 1
            if self._by_client[address] <= 0:
                del self._by_client[address]

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def prepare(self, transport: asyncio.Transport) -> None:
        """Bound the kernel's send buffer and asyncio's, so a client that does not read holds little."""
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_bytes)
            except OSError:
                pass
        transport.set_write_buffer_limits(high=self.send_buffer_bytes)


def _plain_response(status: int, reason: str, detail: str, retry_after: bool = False) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json", f"content-length: {len(body)}"]
    head += ["retry-after: 5"] if retry_after else []
    return ("\r\n".join([*head, "connection: close", "", ""])).encode() + body


class StallWatch:
    """Aborts a transport whose send buffer has held data with no progress for ``stalled_send_s``."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, stalled_send_s: float):
        self.transport = transport
        self.loop = loop
        self.stalled_send_s = stalled_send_s
        self._last_size = 0
        self._stalled_since: float | None = None
        self._timer = loop.call_later(stalled_send_s / STALL_CHECKS, self._check)

    def _check(self) -> None:
        if self.transport.is_closing() and self.transport.get_write_buffer_size() == 0:
            return
        size = self.transport.get_write_buffer_size()
        now = self.loop.time()
        if size == 0 or size < self._last_size:
            self._stalled_since = None
        elif self._stalled_since is None:
            self._stalled_since = now
        elif now - self._stalled_since >= self.stalled_send_s:
            peer = self.transport.get_extra_info("peername")
            log.warning("dropping %s: it took none of %d bytes in %.0f s", peer, size, now - self._stalled_since)
            self.transport.abort()
            return
        self._last_size = size
        self._timer = self.loop.call_later(self.stalled_send_s / STALL_CHECKS, self._check)

    def cancel(self) -> None:
        self._timer.cancel()


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol (httptools) with the guard's bounds."""

    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.guard = guard
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._in_headers = True
        self._stall: StallWatch | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        refused = self.guard.admit(transport, self.client[0] if self.client else "")
        if refused is not None:
            status, detail = refused
            reason = "Too Many Requests" if status == 429 else "Service Unavailable"
            self._refused = True
            transport.write(_plain_response(status, reason, detail, retry_after=True))
            transport.close()
            return
        self.guard.prepare(transport)
        self._stall = StallWatch(transport, self.loop, self.guard.stalled_send_s)
        self._start_header_timer()

    def _start_header_timer(self) -> None:
        self._in_headers = True
        self._header_bytes = 0
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.guard.header_timeout_s, self._headers_too_slow)

    def _stop_header_timer(self) -> None:
        self._in_headers = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._in_headers and not self.transport.is_closing():
            detail = f"the request's headers did not arrive within {self.guard.header_timeout_s:g} s"
            self.transport.write(_plain_response(408, "Request Timeout", detail))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        counting = self._in_headers
        super().data_received(data)
        if counting and self._in_headers:  # the headers are still not whole after this data
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                detail = f"the request's headers are over {MAX_HEADER_BYTES} bytes"
                self.transport.write(_plain_response(431, "Request Header Fields Too Large", detail))
                self.transport.close()

    def on_headers_complete(self) -> None:
        self._stop_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._start_header_timer()  # the next request on a kept-alive connection

    def handle_websocket_upgrade(self) -> None:
        self._stop_header_timer()
        if self._stall is not None:
            self._stall.cancel()
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        if self._stall is not None:
            self._stall.cancel()
        self.guard.release(self.transport)
        super().connection_lost(exc)


class BoundedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol with the guard's bounds (the upgraded connection stays counted)."""

    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.guard = guard
        self._stall: StallWatch | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.guard.prepare(self.transport)
        self._stall = StallWatch(self.transport, self.loop, self.guard.stalled_send_s)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._stall is not None:
            self._stall.cancel()
        self.guard.release(self.transport)
        super().connection_lost(exc)


def trusted_proxies(settings: ServerSettings) -> tuple[str, ...]:
    return tuple(entry.strip() for entry in settings.forwarded_allow_ips.split(",") if entry.strip())


def connection_guard(settings: ServerSettings) -> ConnectionGuard:
    return ConnectionGuard(
        per_client=settings.max_connections_per_client,
        total=settings.max_connections,
        header_timeout_s=settings.header_timeout_s,
        stalled_send_s=settings.stalled_send_s,
        send_buffer_bytes=settings.send_buffer_bytes,
        trusted=trusted_proxies(settings),
    )


def uvicorn_config(app: Any, settings: ServerSettings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration of ``stlens serve`` (and of the tests' servers): bounded connections,
    ``X-Forwarded-For`` believed only from ``--forwarded-allow-ips``, WebSocket messages capped."""
    guard = connection_guard(settings)
    proxies = trusted_proxies(settings)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": functools.partial(BoundedHttpProtocol, guard=guard),
        "ws": functools.partial(BoundedWebSocketProtocol, guard=guard),
        "ws_max_size": settings.max_body_bytes,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": ",".join(proxies) if proxies else "",
        **overrides,
    }
    return uvicorn.Config(app, **options)
