"""Browser tests: a real ``stlens serve`` in a subprocess, driven by Playwright on Debian's Chromium."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from serve_process import stlens_serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not CHROMIUM.exists():
        skip = pytest.mark.skip(
            reason=f"{CHROMIUM} is missing (apt-get install chromium)"
        )
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)


@contextmanager
def serve_dashboard(data_dir: Path) -> Iterator[str]:
    """Runs a real ``stlens serve`` with its own embedded Redis in ``data_dir``; yields its base URL."""
    with stlens_serve(data_dir) as served:
        yield served.base_url


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of the dashboard shared by the tests, in a fresh data folder."""
    with serve_dashboard(tmp_path_factory.mktemp("stlens-data")) as base:
        yield base


@pytest.fixture
def another_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second dashboard with its own empty cache: another machine, for share links."""
    with serve_dashboard(tmp_path_factory.mktemp("stlens-other")) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright_api.Browser]:
    # Module scope: Playwright's sync API holds an event loop on the main thread while it runs, and
    # later tests that call asyncio.run() (tests/scale) must not find it there.
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Tab:
    """A page in its own fresh browser context (no shared cache or storage), with what it saw."""

    page: playwright_api.Page
    console_errors: list[str] = field(default_factory=list)
    socket_messages: list[dict] = field(default_factory=list)
    sent_messages: list[dict] = field(default_factory=list)  # what the page sent on its sockets

    def message_types(self) -> list[str]:
        return [m.get("type") for m in self.socket_messages]

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def open_tab(browser: playwright_api.Browser) -> Iterator[Callable[..., Tab]]:
    """Opens tabs that record console errors and WebSocket messages; fails the test on a console error."""
    contexts = []
    tabs: list[Tab] = []

    def open_(width: int = 1280, height: int = 720) -> Tab:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        tab = Tab(context.new_page())
        tab.page.on(
            "console", lambda m: m.type == "error" and tab.console_errors.append(m.text)
        )
        tab.page.on("pageerror", lambda e: tab.console_errors.append(str(e)))
        def record(ws: playwright_api.WebSocket) -> None:
            ws.on("framereceived", lambda payload: tab.socket_messages.append(json.loads(payload)))
            ws.on("framesent", lambda payload: tab.sent_messages.append(json.loads(payload)))

        tab.page.on("websocket", record)
        tab.page.add_init_script(TEXT_RECORDER)
        tabs.append(tab)
        return tab

    yield open_
    for context in contexts:
        context.close()
    errors = [e for tab in tabs for e in tab.console_errors]
    assert not errors, f"console errors: {errors}"


# Records every text that the status line and the atlas summary show, so a test can tell what was on
# screen along the way even when it was too quick to catch with a poll.
TEXT_RECORDER = """
window.textLog = {};
document.addEventListener('DOMContentLoaded', () => {
  for (const selector of ['#status-text', '.atlas-summary']) {
    const element = document.querySelector(selector);
    if (!element) continue;
    const log = (window.textLog[selector] = []);
    new MutationObserver(() => log.push(element.textContent))
      .observe(element, { childList: true, characterData: true, subtree: true });
  }
});
"""
