"""What the browser tests do on the page, step by step, as a user would."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect

# Few steps keep a run around a second on a 2-core CPU.
TEST_STEPS = 8


def wait_for_choices(page: Page) -> None:
    page.wait_for_selector("#layer option", state="attached")
    page.wait_for_selector("#settings:not([hidden])")


def first_layer_of(page: Page, stream: str) -> str:
    return page.eval_on_selector(
        f"#layer optgroup[data-stream='{stream}'] option", "o => o.value"
    )


def set_setting(page: Page, key: str, value: str) -> None:
    """Type a value into the settings panel (opening it first)."""
    if page.get_attribute("#settings", "open") is None:
        page.click("#settings summary")
    selector = f"#setting-{key.replace('.', '-')}"
    if page.eval_on_selector(selector, "e => e.tagName") == "SELECT":
        page.select_option(selector, value)
    else:
        page.fill(selector, value)
        page.dispatch_event(selector, "change")


def pick(page: Page, layer: str, unit: int, steps: int = TEST_STEPS) -> None:
    page.select_option("#layer", layer)
    page.fill("#unit", str(unit))
    set_setting(page, "steps", str(steps))


def wait_for_result(page: Page, timeout_ms: int = 120_000) -> str:
    """Waits for a finished visualisation on screen and returns its id (from the address)."""
    page.wait_for_selector("#share:not([hidden])", timeout=timeout_ms)
    expect(page).to_have_url(re.compile(r"/v/[0-9a-f]+(\?.*)?$"))
    return urlsplit(page.url).path.rsplit("/", 1)[1]


def canvas_is_drawn(page: Page, selector: str) -> bool:
    """True when an opaque image covers the canvas (a cleared or never drawn one is transparent).

    Not "has variation": a frame of a visualisation can be all but flat, e.g. still flow is white.
    """
    return page.eval_on_selector(
        selector,
        """c => {
          if (!c.width || !c.height) return false;
          const data = c.getContext('2d', { willReadFrequently: true }).getImageData(0, 0, c.width, c.height).data;
          for (let i = 3; i < data.length; i += 4) if (data[i] !== 255) return false;
          return true;
        }""",
    )
