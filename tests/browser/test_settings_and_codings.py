"""Issue 6 in the unit view: a control for every setting, the three flow codings, the export links."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from .conftest import ARTIFACTS
from .helpers import (
    canvas_is_drawn,
    first_layer_of,
    pick,
    set_setting,
    wait_for_choices,
    wait_for_result,
)

pytestmark = pytest.mark.browser


def setting_paths(
    schemas: dict, name: str = "VisualizationSettings", prefix: str = ""
) -> list[str]:
    """Every leaf of the settings schema as a dotted path, e.g. ``weights.tv_time.motion``."""
    paths = []
    for key, prop in schemas[name]["properties"].items():
        ref = prop.get("$ref") or (prop.get("allOf") or [{}])[0].get("$ref")
        if ref:
            paths += setting_paths(schemas, ref.rsplit("/", 1)[1], f"{prefix}{key}.")
        else:
            paths.append(prefix + key)
    return paths


def test_every_setting_has_a_control_and_travels_with_the_link(dashboard, open_tab):
    schemas = httpx.get(f"{dashboard}/openapi.json").json()["components"]["schemas"]
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    page.click("#settings summary")
    for path in setting_paths(schemas):
        expect(page.locator(f"#setting-{path.replace('.', '-')}")).to_be_attached()

    pick(page, first_layer_of(page, "fusion"), unit=4)
    page.locator("#setting-weights-tv_time-motion + input[type=range]").fill(
        "2"
    )  # the slow end
    expect(page.locator("#setting-weights-tv_time-motion")).to_have_value("100")
    set_setting(page, "param", "pixel")
    expect(page).to_have_url(re.compile(r"weights\.tv_time\.motion=100&param=pixel"))
    tab.screenshot("settings-panel")

    page.click("#visualise")
    visualization_id = wait_for_result(page)
    settings = tab.socket_messages[-1]["request"]["settings"]
    assert (
        settings["weights"]["tv_time"]["motion"] == 100 and settings["param"] == "pixel"
    )

    page.click("#settings-reset")
    assert schemas["VisualizationSettings"]["properties"]["param"].get("default") is None  # unset: by layer
    expect(page.locator("#setting-param")).to_have_value("")
    expect(page.locator("#setting-param option:checked")).to_have_text("by layer")
    expect(page).not_to_have_url(re.compile("param="))

    shared = open_tab()
    shared.page.goto(f"{dashboard}/v/{visualization_id}")
    wait_for_result(shared.page)
    expect(shared.page.locator("#setting-weights-tv_time-motion")).to_have_value("100")
    expect(shared.page.locator("#setting-param")).to_have_value("pixel")


def test_an_unset_setting_shows_that_the_layer_decides_and_a_value_typed_travels(dashboard, open_tab):
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    page.click("#settings summary")
    freedom = page.locator("#setting-freedom")
    expect(freedom).to_have_value("")
    expect(freedom).to_have_attribute("placeholder", "by layer")
    page.locator("label[for=setting-freedom]").screenshot(path=str(ARTIFACTS / "settings-freedom-unset.png"))
    expect(page.locator("#setting-param")).to_have_value("")
    expect(page.locator("#setting-param option:checked")).to_have_text("by layer")
    page.locator("label[for=setting-param]").screenshot(path=str(ARTIFACTS / "settings-param-unset.png"))
    pick(page, first_layer_of(page, "fusion"), unit=4)
    page.click("#visualise")
    by_layer = wait_for_result(page)
    filled_in = tab.socket_messages[-1]["request"]["settings"]
    assert filled_in["freedom"] == 2.0 and filled_in["param"] == "spectrum"  # the server filled in the layer's
    set_setting(page, "freedom", "1")
    expect(page).to_have_url(re.compile(r"freedom=1"))
    page.click("#visualise")
    typed = wait_for_result(page)
    assert tab.socket_messages[-1]["request"]["settings"]["freedom"] == 1.0

    # a share link shows the layer's own choices as "by layer" again, and a value typed as typed
    shared = open_tab().page
    shared.goto(f"{dashboard}/v/{by_layer}")
    wait_for_result(shared)
    expect(shared.locator("#setting-freedom")).to_have_value("")
    expect(shared.locator("#setting-param option:checked")).to_have_text("by layer")
    pick(shared, "logits", unit=0)  # another layer gets its own choice: the page's address asks for none
    expect(shared).not_to_have_url(re.compile("param=|freedom="))
    shared.goto(f"{dashboard}/v/{by_layer}")
    wait_for_result(shared)
    shared.goto(f"{dashboard}/v/{typed}")
    wait_for_result(shared)
    expect(shared.locator("#setting-freedom")).to_have_value("1")
    shared.screenshot(path=str(ARTIFACTS / "share-link-by-layer.png"))


def motion_pixels(page) -> str:
    return page.eval_on_selector("#viewer-motion canvas", "c => c.toDataURL()")


def test_flow_codings_and_exports(dashboard, open_tab):
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    pick(page, first_layer_of(page, "fusion"), unit=5)
    page.click("#visualise")
    visualization_id = wait_for_result(page)
    page.locator("body").press(" ")  # pause, so only the coding changes the picture
    legend = page.locator("#flow-legend")
    expect(legend).to_be_visible()
    direction = motion_pixels(page)

    page.click("#viewer-motion label:has-text('Components')")
    expect(page).to_have_url(re.compile(rf"/v/{visualization_id}\?model=.*&coding=components$"))
    expect(legend).to_be_hidden()
    page.wait_for_function(
        "d => document.querySelector('#viewer-motion canvas').toDataURL() !== d",
        arg=direction,
    )
    page.click("#viewer-motion label:has-text('Arrows')")
    expect(page.locator("#share-url")).to_have_value(
        re.compile(rf"^{re.escape(dashboard)}/v/{visualization_id}\?model=.*&coding=arrows$")
    )
    assert canvas_is_drawn(page, "#viewer-motion canvas")
    expect(legend).to_be_visible()  # arrows are drawn over the direction coding: the wheel is their key too
    tab.screenshot("flow-arrows")

    links = page.locator("#exports a")
    names = links.all_inner_texts()
    assert {
        "appearance.gif",
        "motion.gif",
        "appearance.png",
        "motion-direction.png",
        "inputs.npz",
    } <= set(names)
    for href in links.evaluate_all("links => links.map(a => a.href)"):
        response = page.request.get(href)
        assert response.ok and len(response.body()) > 0, href

    again = open_tab()
    again.page.goto(f"{dashboard}/v/{visualization_id}?coding=arrows")
    wait_for_result(again.page)
    expect(again.page.locator("#viewer-motion input[value=arrows]")).to_be_checked()
    expect(again.page.locator("#flow-legend")).to_be_visible()


def test_flow_caption_and_legend_state_the_full_scale(dashboard, open_tab):
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    pick(page, first_layer_of(page, "motion"), unit=3)
    page.click("#visualise")
    visualization_id = wait_for_result(page)
    rim = page.request.get(f"{dashboard}/api/visualizations/{visualization_id}/media/flow-legend.json").json()["rim_px"]
    expect(page.locator("#coding-caption")).to_contain_text(f"full scale {float(f'{rim:.3g}'):g} px")
    expect(page.locator("#flow-legend")).to_be_visible()
    expect(page.locator("#flow-legend figcaption")).to_contain_text(f"the rim: {float(f'{rim:.3g}'):g} px a frame")
    tab.screenshot("flow-legend-scale")


def boxes_overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


@pytest.mark.parametrize("width", [1280, 1920, 390])
def test_colour_wheel_names_the_directions_and_never_covers_the_clip(dashboard, open_tab, width):
    tab = open_tab(width, 900)
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    pick(page, first_layer_of(page, "motion"), unit=0)
    page.click("#visualise")
    wait_for_result(page)
    wheel = page.locator("#flow-legend .wheel")
    for direction in ("up", "down", "left", "right"):
        expect(wheel.locator(f".direction.{direction}")).to_contain_text(direction)
    box = lambda selector: page.locator(selector).bounding_box()  # noqa: E731
    up, down, left, right = (box(f"#flow-legend .{d}") for d in ("up", "down", "left", "right"))
    image = box("#flow-legend img")
    assert up["y"] < image["y"] < down["y"] and left["x"] < image["x"] < right["x"]  # each label on its side
    assert not boxes_overlap(box("#flow-legend"), box("#viewer-motion canvas"))
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # the result page fits its width
    tab.screenshot(f"flow-wheel-{width}")
