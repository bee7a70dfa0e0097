"""Issue 6: the sweeps (one unit fast -> slow, or from several seeds) and pinned visualisations compared."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .helpers import (
    canvas_is_drawn,
    first_layer_of,
    pick,
    wait_for_choices,
    wait_for_result,
)

pytestmark = pytest.mark.browser

SWEEP_COLUMNS = 5


def wait_for_cards(page, grid: str, count: int) -> None:
    page.wait_for_function(
        "([grid, count]) => document.querySelectorAll(`${grid} .card-status[data-state=done]`).length === count",
        arg=[grid, count],
        timeout=180_000,
    )


def test_speed_sweep_runs_fast_to_slow_and_is_a_link(dashboard, open_tab):
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    pick(page, first_layer_of(page, "fusion"), unit=6)
    page.click("#visualise")
    wait_for_result(page)
    before_sweep = len(tab.socket_messages)
    page.click("#sweep-speed")
    expect(page).to_have_url(re.compile(r"sweep=speed"))
    # it opens below the result and its examples: brought into view, not left under the fold
    expect(page.locator("#sweep h2")).to_be_in_viewport()
    wait_for_cards(page, ".sweep-grid", SWEEP_COLUMNS)
    tab.screenshot("speed-sweep")

    done = [m for m in tab.socket_messages[before_sweep:] if m["type"] == "done"]
    motion_weights = [
        m["request"]["settings"]["weights"]["tv_time"]["motion"] for m in done
    ]
    assert (
        motion_weights == sorted(motion_weights)
        and len(set(motion_weights)) == SWEEP_COLUMNS
    )
    assert canvas_is_drawn(
        page, ".sweep-grid .card:first-child canvas[data-stream=motion]"
    )
    links = page.locator(".sweep-grid .card-actions a").evaluate_all(
        "links => links.map(a => a.pathname)"
    )
    assert links == [f"/v/{m['id']}" for m in done]

    again = open_tab()
    again.page.goto(page.url)
    wait_for_cards(again.page, ".sweep-grid", SWEEP_COLUMNS)
    assert "progress" not in again.message_types()  # every column came from the cache

    page.click("#sweep-close")
    expect(page.locator("#sweep")).to_be_hidden()
    expect(page).not_to_have_url(re.compile(r"sweep="))


def test_seed_sweep_shows_diverse_solutions(dashboard, open_tab):
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    pick(page, first_layer_of(page, "appearance"), unit=1)
    page.click("#sweep-seeds")
    expect(page).to_have_url(re.compile(r"sweep=seeds"))
    wait_for_cards(page, ".sweep-grid", SWEEP_COLUMNS)
    done = [m for m in tab.socket_messages if m["type"] == "done"]
    seeds = [m["request"]["settings"]["seed"] for m in done]
    assert seeds == sorted(seeds) and len(set(seeds)) == SWEEP_COLUMNS
    assert len({m["id"] for m in done}) == SWEEP_COLUMNS
    tab.screenshot("seed-sweep")


def test_pins_compare_visualisations_and_travel_with_the_link(dashboard, open_tab):
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    pick(page, first_layer_of(page, "appearance"), unit=3)
    page.click("#visualise")
    first = wait_for_result(page)
    page.click("#pin")
    pick(page, first_layer_of(page, "motion"), unit=3)
    page.click("#visualise")
    second = wait_for_result(page)
    page.locator("body").press("p")  # the keyboard shortcut
    wait_for_cards(page, ".pin-grid", 2)
    pin = r"\.[\w-]+"  # each pin carries its request, so another server can recompute it
    expect(page).to_have_url(re.compile(rf"pins={first}{pin}%2C{second}{pin}$"))
    tab.screenshot("compare-pins")

    shared = open_tab(390, 844)
    shared.page.goto(page.url)
    wait_for_cards(shared.page, ".pin-grid", 2)
    assert shared.page.locator(".pin-grid .card").evaluate_all(
        "cards => cards.map(c => c.dataset.id)"
    ) == [first, second]
    shared.screenshot("compare-pins-phone")

    page.click(f".pin-grid .card[data-id='{first}'] button[aria-label=Unpin]")
    expect(page).to_have_url(re.compile(rf"pins={second}{pin}$"))
    page.goto(dashboard + "/")  # a later visit remembers the pins
    wait_for_cards(page, ".pin-grid", 1)
    page.click("#pins-clear")
    expect(page.locator("#pins")).to_be_hidden()
    expect(page).not_to_have_url(re.compile(r"pins="))
