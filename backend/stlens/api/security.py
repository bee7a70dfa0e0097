"""Web security: which hosts and origins the server answers, and what every response tells the browser.

- **Hosts.** A request whose ``Host`` is not one of ours gets 400, so a DNS-rebinding page (a name of
  the attacker's that resolves to this machine) cannot read the API. Ours are any IP literal (a
  rebinding needs a name), ``localhost``, this machine's names, the public URL's host and the
  ``--allowed-hosts`` list (``*.example.org`` patterns; ``*`` turns the check off).
- **Origins.** A WebSocket opened from a page of another origin gets 403 before it is accepted (a
  browser sends ``Origin``; scripts and notebooks send none and are let in).
- **Headers.** Every response says ``X-Content-Type-Options: nosniff``, may not be framed
  (``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``) and carries a Content Security Policy:
  the page's allows its own scripts, styles and sockets only (no inline script), images and media from
  itself and ``data:``/``blob:`` URLs (previews and exports); FastAPI's ``/docs`` page, which loads
  Swagger UI from its CDN with an inline start-up script, gets a policy that allows exactly that.
- **Share links** are built from ``--public-url`` when it is given, else from the request's (checked) host.

Starlette's ``TrustedHostMiddleware`` does the host check alone, but answers in plain text; the API's
errors are JSON ``{"detail"}``, and the origin check needs the same host, so both live here.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import cached_property
from urllib.parse import urlsplit

from starlette.datastructures import URL, Headers
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import ServerSettings

PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_POLICY = "; ".join(
    [
        "default-src 'self'",
        f"script-src 'self' 'unsafe-inline' {DOCS_CDN}",
        f"style-src 'self' 'unsafe-inline' {DOCS_CDN}",
        "img-src 'self' data: https://fastapi.tiangolo.com",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


def _host_of(netloc: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) as a lowercase host and its port, if any."""
    parts = urlsplit(f"//{netloc}")
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or "").lower(), port


class HostPolicy:
    """The hosts this server answers to and the origins its sockets accept."""

    def __init__(self, allowed: tuple[str, ...], public_url: str | None):
        self.public_url = public_url.rstrip("/") if public_url else None
        public = _host_of(urlsplit(self.public_url).netloc)[0] if self.public_url else None
        self.any_host = "*" in allowed
        names = {"localhost", *(entry.lower() for entry in allowed if not entry.startswith("*"))}
        self.names = names | ({public} if public else set())
        self.suffixes = tuple(entry[1:].lower() for entry in allowed if entry.startswith("*.") and len(entry) > 2)

    @cached_property
    def machine_names(self) -> frozenset[str]:
        return frozenset(name.lower() for name in (socket.gethostname(), socket.getfqdn()) if name)

    def allows_host(self, host: str) -> bool:
        if self.any_host:
            return True
        if not host:
            return False
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            pass
        return host in self.names or host in self.machine_names or any(host.endswith(s) for s in self.suffixes)

    def allows_origin(self, origin: str | None, host_header: str) -> bool:
        """A socket's ``Origin``: absent (not a browser), or the server's own (as the ``Host`` it was
        asked by, or the public URL's)."""
        if origin is None:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False  # "null", file:, extensions' schemes
        own = {_netloc(*_host_of(host_header), scheme=parts.scheme)}
        if self.public_url:
            public = urlsplit(self.public_url)
            own.add(_netloc(*_host_of(public.netloc), scheme=public.scheme))
        return _netloc(*_host_of(parts.netloc), scheme=parts.scheme) in own


def _netloc(host: str, port: int | None, scheme: str) -> str:
    default = 443 if scheme in ("https", "wss") else 80
    return f"{host}:{port or default}"


def host_policy(settings: ServerSettings) -> HostPolicy:
    allowed = tuple(entry.strip() for entry in settings.allowed_hosts.split(",") if entry.strip())
    return HostPolicy(allowed, settings.public_url)


class WebSecurity:
    """ASGI middleware: refuses foreign hosts (400) and foreign socket origins (403), and adds the
    security headers to every HTTP response."""

    def __init__(self, app: ASGIApp, policy: HostPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host_header = headers.get("host", "")
        host = _host_of(host_header)[0]
        if not self.policy.allows_host(host):
            detail = (
                f"this server does not answer to the host {host_header[:100]!r}; "
                "its operator can add it with --allowed-hosts"
            )
            await self._refuse(400, detail, scope, receive, send)
            return
        if scope["type"] == "websocket":
            origin = headers.get("origin")
            if origin is not None and not self.policy.allows_origin(origin, host_header):  # none: not a browser
                detail = f"sockets are only accepted from this server's own pages, not from {origin[:100]!r}"
                await self._refuse(403, detail, scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        policy = (DOCS_POLICY if scope["path"] in DOCS_PATHS else PAGE_POLICY).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *COMMON_HEADERS,
                    (b"content-security-policy", policy),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse(self, status: int, detail: str, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 1008})  # the server cannot send a body: 403
            return
        headers = {name.decode(): value.decode() for name, value in COMMON_HEADERS}
        await JSONResponse({"detail": detail}, status_code=status, headers=headers)(scope, receive, send)


def link(connection: HTTPConnection, settings: ServerSettings, route: str, **params: str) -> URL:
    """An absolute link to a route, for giving out (share links): under ``--public-url`` when it is
    given, else under the request's own base URL (whose host :class:`WebSecurity` has checked)."""
    if settings.public_url:
        return URL(settings.public_url.rstrip("/") + str(connection.app.url_path_for(route, **params)))
    return connection.url_for(route, **params)
