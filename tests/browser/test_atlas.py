"""Issue 6: the atlas, every unit of a layer as a thumbnail, filled in progressively; a click opens one."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .helpers import canvas_is_drawn, wait_for_choices, wait_for_result

pytestmark = pytest.mark.browser


def smallest_layer(page) -> tuple[str, int]:
    """The layer with the fewest units (the quickest atlas) and its unit count."""
    return page.evaluate(
        """async () => {
          const model = document.querySelector('#model').value;
          const layers = (await (await fetch(`/api/models/${model}`)).json()).layers;
          const small = layers.reduce((a, b) => (b.units < a.units ? b : a));
          return [small.id, small.units];
        }"""
    )


def test_atlas_fills_in_and_opens_a_unit(dashboard, open_tab):
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    layer, units = smallest_layer(page)
    page.select_option("#layer", layer)
    page.click("#settings summary")
    page.fill("#setting-steps", "4")
    page.dispatch_event("#setting-steps", "change")
    page.click("#atlas-run")
    expect(page.locator(".atlas-grid .card")).to_have_count(units)
    expect(page.locator("#atlas h2")).to_be_in_viewport()  # it opens below the result: brought into view
    expect(page).to_have_url(re.compile(r"atlas=1"))
    page.wait_for_function(
        # done, with or without a warning that the unit shows little
        "n => document.querySelectorAll('.atlas-grid .card-status:is([data-state=done], [data-state=warn])').length === n",
        arg=units,
        timeout=240_000,
    )
    expect(page.locator(".atlas-summary")).to_have_text(f"{units} / {units} units")
    counts = [
        int(text.split(" / ")[0])
        for text in page.evaluate("window.textLog['.atlas-summary']")
    ]
    assert (
        counts == sorted(counts) and len(set(counts)) == units + 1
    )  # filled in one unit at a time
    assert canvas_is_drawn(
        page, f".atlas-grid .card[data-unit='{units - 1}'] canvas:not([hidden])"
    )
    tab.screenshot("atlas")

    page.click(".atlas-grid .card[data-unit='3'] .card-actions button")
    visualization_id = wait_for_result(page)
    expect(page.locator("#status-text")).to_contain_text("Computed before: opened in")
    assert page.input_value("#unit") == "3"
    assert (
        tab.socket_messages[-1]["id"] == visualization_id
        and tab.socket_messages[-1]["request"]["unit"] == 3
    )

    # The server keeps the atlas: another visitor gets every tile from the cache, in the first message.
    again = open_tab()
    again.page.goto(page.url)
    again.page.wait_for_function(
        # done, with or without a warning that the unit shows little
        "n => document.querySelectorAll('.atlas-grid .card-status:is([data-state=done], [data-state=warn])').length === n",
        arg=units,
    )
    atlas_messages = [m for m in again.socket_messages if "units_total" in m or m.get("type") == "unit"]
    assert [m["type"] for m in atlas_messages] == ["atlas", "done"]
