"""A client is a browser session: the page is given a cookie, limits key on it, its address bounds them all."""

from __future__ import annotations

import httpx
import pytest

from stlens.clients import SESSION_COOKIE, Client, session_or_none
from stlens.engine.settings import MAX_STEPS

from .requests import request


def test_session_tokens_are_checked():
    assert session_or_none("a" * 16) == "a" * 16
    for bad in (None, "", "short", "a" * 65, "a" * 15 + ";", "ü" * 20):
        assert session_or_none(bad) == ""
    assert Client("1.2.3.4").key == "address:1.2.3.4"
    assert Client("1.2.3.4", "a" * 16).key == Client("5.6.7.8", "a" * 16).key  # the session, wherever it is


def test_a_page_gives_a_browser_its_session_once(server):
    first = httpx.get(f"{server.base_url}/")
    cookie = first.cookies.get(SESSION_COOKIE)
    assert cookie and session_or_none(cookie) == cookie
    assert "httponly" in first.headers["set-cookie"].lower() and "samesite=lax" in first.headers["set-cookie"].lower()
    again = httpx.get(f"{server.base_url}/", cookies={SESSION_COOKIE: cookie})
    assert SESSION_COOKIE not in again.cookies  # kept, not replaced
    assert "set-cookie" not in httpx.get(f"{server.base_url}/api/health").headers  # the API gives none


@pytest.fixture
def small_limits_server(make_server):
    return make_server(max_pending_per_client=1, max_pending_per_address=3)


def test_browsers_behind_one_address_are_clients_of_their_own_under_its_ceiling(small_limits_server):
    server = small_limits_server
    sessions = [f"classroom-student-{n:02d}" for n in range(4)]

    def post(unit: int, session: str) -> httpx.Response:
        body = request(unit=unit, steps=MAX_STEPS)
        return server.http.post("/api/visualizations", json=body, headers={"Cookie": f"{SESSION_COOKIE}={session}"})

    assert [post(unit, session).status_code for unit, session in enumerate(sessions[:3])] == [202] * 3
    own = post(10, sessions[0])
    assert own.status_code == 429 and "you have 1" in own.json()["detail"]
    shared = post(11, sessions[3])
    assert shared.status_code == 429 and "your address has 3" in shared.json()["detail"]
    by_header = server.http.post(
        "/api/visualizations", json=request(unit=12), headers={"X-Stlens-Session": sessions[3]}
    )
    assert by_header.status_code == 429 and "your address" in by_header.json()["detail"]  # the same client
