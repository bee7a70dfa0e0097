"""Issue 15: the teaching layer. Help reachable from every page, the tour that names what it shows,
the rough edges of the unit view, and every page readable at phone width."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .helpers import first_layer_of, pick, set_setting, wait_for_choices, wait_for_result
from .test_presentation import TOUR, wait_for_stop

pytestmark = pytest.mark.browser

WIDTHS = [(1280, 800), (1920, 1080), (390, 844)]
PAGES = {"unit-view": "/", "explain": "/explain", "insights": "/insights", "help": "/static/help.html"}


def assert_fits_the_width(page) -> None:
    """Nothing sticks out sideways: the page scrolls down only."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width} px wide"


@pytest.mark.parametrize("name", PAGES)
def test_how_to_read_this_is_one_click_from_every_page(dashboard, open_tab, name):
    for width, height in WIDTHS:
        tab = open_tab(width, height)
        page = tab.page
        page.goto(dashboard + PAGES[name])
        page.wait_for_load_state("networkidle")
        assert_fits_the_width(page)
        tab.screenshot(f"page-{name}-{width}")
    page.click("nav.page-links >> text=How to read this")
    expect(page).to_have_url(re.compile(r"/static/help\.html$"))
    for section in ("streams", "units", "objective", "flow", "speed"):
        expect(page.locator(f"section#{section} h2")).to_be_visible()
    wheel = page.locator("#flow .flow-key")
    for direction in ("up", "down", "left", "right"):
        expect(wheel.locator(f".direction.{direction}")).to_contain_text(direction)
    images = page.locator("main img")
    assert images.count() >= 8
    assert all(images.evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"))


def test_the_shortcuts_dialog_leads_to_the_help(dashboard, open_tab):
    page = open_tab().page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    page.locator("body").press("?")
    expect(page.locator("#shortcuts a[href='/static/help.html']")).to_be_visible()


def test_a_bad_setting_in_the_closed_settings_panel_is_shown_not_swallowed(dashboard, open_tab):
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    set_setting(page, "steps", "5000")  # above the server's bound
    page.click("#settings summary")  # closed again: the bad field cannot be seen
    assert page.get_attribute("#settings", "open") is None
    page.click("#visualise")
    expect(page.locator("#settings")).to_have_attribute("open", "")
    expect(page.locator("#status-text")).to_contain_text(re.compile(r"Steps: .*1024"))
    expect(page.locator("#setting-steps")).to_be_focused()
    assert tab.message_types() == []  # nothing was sent
    tab.screenshot("invalid-setting")


def test_a_unit_past_the_layers_end_becomes_its_last_unit_everywhere(dashboard, open_tab):
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    layer = first_layer_of(page, "motion")
    pick(page, layer, unit=3)
    page.click("#visualise")
    wait_for_result(page)
    last = page.get_attribute("#unit", "max")
    page.fill("#unit", "999")
    expect(page.locator("#unit")).to_have_value(last)
    expect(page.locator("#unit-slider")).to_have_value(last)
    expect(page).to_have_url(re.compile(rf"layer={re.escape(layer)}&unit={last}&"))
    expect(page.locator("#share")).to_be_hidden()  # the result of unit 3 no longer offers its link
    expect(page.locator("#status-text")).to_have_text("The choice changed: press Visualise to see it.")
    page.click("#visualise")
    wait_for_result(page)
    assert tab.socket_messages[-1]["request"]["unit"] == int(last)


def test_every_tour_stop_names_its_unit_and_shows_its_objective(dashboard, open_tab):
    stops = json.loads(Path(TOUR).read_text())["stops"]
    tab = open_tab(1920, 1080)
    page = tab.page
    page.goto(f"{dashboard}/?tour=builtin&stop=0")
    for index, stop in enumerate(stops):
        expect(page.locator(".present-counter")).to_have_text(f"{index + 1} / {len(stops)}")
        wait_for_stop(page)
        what = page.locator(".present-what")
        expect(what).to_contain_text(f"unit {stop['unit']}")
        if stop["layer"] == "logits":
            label = page.request.get(f"{dashboard}/api/models/{stop['model']}").json()["labels"][stop["unit"]]
            expect(what).to_contain_text(f'class "{label}"')
        else:
            expect(what).to_contain_text(stop["layer"])
        expect(page.locator(".present-objective")).to_contain_text(re.compile(r"objective -?[\d.e+-]+"))
        expect(page.locator(".present-examples .unit-example").first).to_be_visible(timeout=60_000)
        wheel = page.locator(".present-key img")
        if stop["layer"].startswith("appearance."):
            expect(wheel).to_be_hidden()  # no flow, no key
        else:
            expect(wheel).to_be_visible()
            assert wheel.bounding_box()["width"] >= 150  # readable from the back of a lecture room
        tab.screenshot(f"tour-stop-{index}-1920")
        page.locator("body").press("ArrowRight")
    for previous, stop in zip(stops, stops[1:]):  # "the previous stop" means the unit that was just shown
        if "previous stop" in stop["caption"]:
            assert (stop["layer"], stop["unit"]) == (previous["layer"], previous["unit"]), stop["caption"]
