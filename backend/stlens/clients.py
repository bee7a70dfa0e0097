"""Who is asking: a browser session at an address, the unit of per-client limits and fair shares.

Thirty students behind one university NAT are thirty clients: the page is given a session (a
random token in a cookie) and every limit and fair share keys on it. A client without a session
(a script that sends none) is its address. The address still bounds what all of its sessions
together may have pending (``Limits.per_address``), so a script that opens sessions by the
hundred cannot take the server either. The web layer reads the session off a request
(``api.deps.client_of``); everything below it sees only :class:`Client`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

SESSION_COOKIE = "stlens_session"  # given to the page with its first HTML answer
SESSION_HEADER = "x-stlens-session"  # or sent by a script that wants one
SESSION_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")  # anything else is ignored: the client is its address


@dataclass(frozen=True)
class Client:
    """One client: ``session`` is its token ("" where it has none), ``address`` where it connects from."""

    address: str
    session: str = ""

    @property
    def key(self) -> str:
        """What per-client limits and fair shares count: the session, or the address without one."""
        return f"session:{self.session}" if self.session else f"address:{self.address}"


def session_or_none(token: str | None) -> str:
    """The token if it is a well-formed session, else "" (no session)."""
    return token if token is not None and SESSION_PATTERN.fullmatch(token) else ""


def new_session() -> str:
    """A fresh session token (128 bits of randomness, URL-safe)."""
    return secrets.token_urlsafe(16)
