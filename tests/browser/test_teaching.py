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


def test_a_result_that_barely_moves_its_unit_says_so_also_in_the_atlas(dashboard, open_tab):
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    layer = first_layer_of(page, "appearance")
    pick(page, layer, unit=1)
    set_setting(page, "lr", "0.000001")  # the optimisation cannot move the input: the unit stays where it started
    for transform in ("jitter", "zoom", "time_shift"):  # and the start's objective is measured on the same input
        set_setting(page, f"transforms.{transform}", "0")
    page.click("#visualise")
    visualization_id = wait_for_result(page)
    warnings = page.locator("#result-warnings .caveat")
    expect(warnings.first).to_contain_text("did not raise this unit's response")
    expect(page.locator("#status-text")).to_have_attribute("data-state", "warn")
    expect(page.locator("#status-text")).to_contain_text("this result may show nothing")
    record = page.request.get(f"{dashboard}/api/visualizations/{visualization_id}").json()
    assert record["result"]["warnings"] and "did not raise" in record["result"]["warnings"][0]
    tab.screenshot("result-warning")

    page.click("#atlas-run")
    units = int(page.get_attribute("#unit", "max")) + 1
    page.wait_for_function(
        "n => document.querySelectorAll('.atlas-grid .card-status[data-state=warn]').length === n",
        arg=units, timeout=240_000,
    )  # every unit of the layer, at that learning rate, is marked on its thumbnail
    expect(page.locator(".atlas-grid .card.warned").first).to_have_attribute("title", re.compile("did not raise|hardly responds"))
    tab.screenshot("atlas-warnings")


def test_random_weights_are_a_badge_wherever_the_model_is_shown(dashboard, open_tab):
    models = {m["id"]: m for m in open_tab().page.request.get(f"{dashboard}/api/models").json()}
    random_id = "i3d-kinetics400"  # Kinetics class names in the file, but never trained here
    if not models[random_id]["random_weights"]:
        pytest.skip("the I3D checkpoints are cached on this machine: it is trained here")
    tab = open_tab()
    page = tab.page
    page.goto(f"{dashboard}/?model={random_id}&layer=logits&unit=3&steps=1")
    wait_for_choices(page)
    expect(page.locator(".model-badge .badge.random")).to_be_visible(timeout=60_000)
    expect(page.locator("#model-note")).to_contain_text("Random weights")
    expect(page.locator("#unit-label")).to_have_text("class: class 3")  # not a borrowed Kinetics name
    wait_for_result(page, timeout_ms=240_000)
    page.click("#about-model")
    expect(page.locator("#model-dialog")).to_contain_text("never trained")
    tab.screenshot("random-weights-unit-view")
    page.keyboard.press("Escape")

    explain = open_tab().page
    explain.goto(f"{dashboard}/explain?model={random_id}&sample=synth-walk&target=0")
    explain.wait_for_selector("#result:not([hidden])", timeout=240_000)
    expect(explain.locator("#model-badge .badge.random")).to_be_visible()
    expect(explain.locator("#caveats .caveat.random-weights")).to_contain_text("mean nothing")
    assert all(item.startswith("class ") for item in explain.locator("#prediction li").all_inner_texts())
    assert explain.inner_text("#target-label") == "class 0"

    trained = open_tab().page
    trained.goto(f"{dashboard}/?model=synth-conv-fusion")
    wait_for_choices(trained)
    expect(trained.locator(".model-badge .badge")).to_have_count(0)
    trained.click("#about-model")
    expect(trained.locator("#model-dialog")).to_contain_text("stlens train")  # its training card


def test_the_atlas_of_a_random_weight_model_wears_the_badge(dashboard, open_tab):
    page = open_tab().page
    page.goto(f"{dashboard}/?model=vgg16-twostream-small")
    wait_for_choices(page)
    if page.locator(".model-badge .badge.random").count() == 0:
        pytest.skip("this machine has trained weights for the VGG net")
    smallest = page.evaluate(
        "async () => (await (await fetch('/api/models/vgg16-twostream-small')).json()).layers"
        ".reduce((a, b) => (b.units < a.units ? b : a)).id"
    )
    page.select_option("#layer", smallest)
    set_setting(page, "steps", "1")
    page.click("#atlas-run")
    expect(page.locator("#atlas h2 .badge.random")).to_be_visible()
    page.wait_for_function(
        "() => /^(\\d+) \\/ \\1 units/.test(document.querySelector('.atlas-summary').textContent)", timeout=240_000
    )


def test_a_tour_stop_and_a_share_link_of_a_random_weight_model_wear_the_badge(dashboard, open_tab):
    model = open_tab().page.request.get(f"{dashboard}/api/models/vgg16-twostream-small").json()
    if not model["random_weights"]:
        pytest.skip("this machine has trained weights for the VGG net")
    smallest = min(model["layers"], key=lambda layer: layer["units"])
    stop = {"model": model["id"], "layer": smallest["id"], "unit": 0, "settings": {"steps": 1}, "caption": "untrained"}
    page = open_tab().page
    # a tour of one stop, served in place of a tour file (tours are static files of the page)
    page.route("**/static/tours/untrained.json", lambda route: route.fulfill(json={"title": "t", "stops": [stop]}))
    page.goto(f"{dashboard}/?tour=untrained&stop=0")
    expect(page.locator(".present-what .badge.random")).to_be_visible(timeout=60_000)
    wait_for_stop(page)

    created = page.request.post(
        f"{dashboard}/api/visualizations",
        data={"model": stop["model"], "layer": stop["layer"], "unit": 0, "settings": {"steps": 1}},
    ).json()
    shared = open_tab().page
    shared.goto(created["share_url"])
    expect(shared.locator(".model-badge .badge.random")).to_be_visible(timeout=60_000)
    wait_for_result(shared, timeout_ms=240_000)
