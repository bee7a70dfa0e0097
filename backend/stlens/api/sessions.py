"""Browser sessions: every page the server sends gives a browser without one its session cookie.

The cookie is what makes each browser its own client (``stlens.clients``, read by
``deps.client_of``): a page's sockets and fetches carry it back. It is HttpOnly (the page's script
never needs it), SameSite=Lax (sent on a link followed from elsewhere, so a share link keeps the
session) and lives as long as the browser session.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..clients import SESSION_COOKIE, new_session, session_or_none


class SessionCookie:
    """ASGI middleware: an HTML answer to a request without a valid session cookie sets a new one."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = cookie_parser(Headers(scope=scope).get("cookie", ""))
        if session_or_none(cookies.get(SESSION_COOKIE)):
            await self.app(scope, receive, send)
            return
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = f"{SESSION_COOKIE}={new_session()}; Path=/; HttpOnly; SameSite=Lax{secure}".encode()

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
                if content_type.startswith("text/html"):
                    message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
