"""Issue 12 on the page: how far to trust a picture, where its evidence is, and accentuating a real clip."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .helpers import TEST_STEPS, pick, wait_for_choices, wait_for_result

pytestmark = pytest.mark.browser


def opaque_share(page, selector: str) -> float:
    """The share of the canvas's pixels that are fully opaque (the evidence overlay fades the rest)."""
    return page.eval_on_selector(
        selector,
        """c => {
          const data = c.getContext('2d', { willReadFrequently: true }).getImageData(0, 0, c.width, c.height).data;
          let opaque = 0;
          for (let i = 3; i < data.length; i += 4) opaque += data[i] === 255;
          return opaque / (data.length / 4);
        }""",
    )


def test_a_class_visualisation_says_how_far_to_trust_it_and_shows_its_evidence(dashboard, open_tab):
    tab = open_tab(1280, 900)
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    pick(page, "logits", unit=0, steps=TEST_STEPS)
    page.click("#visualise")
    trust = page.locator("#faithfulness")
    # while it runs, the box says what it will measure, in its place: the pictures stay put when it ends
    expect(page.locator("#faithfulness[data-pending]")).to_contain_text("Measured when the optimisation ends")
    running_top = page.locator(".viewers").bounding_box()["y"]
    wait_for_result(page)
    expect(trust).not_to_have_attribute("data-pending", "")
    done_top = page.locator(".viewers").bounding_box()["y"]
    # the lines are longer than the promise (at this width ~80 px): the box's whole height was 170 px
    assert abs(done_top - running_top) < 100, (running_top, done_top)
    expect(trust).to_be_visible()
    expect(trust).to_contain_text("How far to trust this picture")
    expect(trust).to_contain_text(re.compile(r"\d of 4 independent models see 'walk' in it"))
    expect(trust).to_contain_text("earlier layers")
    expect(trust).to_contain_text("test clips")
    tab.screenshot("faithfulness-line")

    toggle = page.locator("input[name='evidence']")
    expect(toggle).to_be_visible()
    before = opaque_share(page, "#viewer-appearance canvas")
    toggle.check()
    expect(page.locator("#viewer-appearance .clip-box")).to_have_class(re.compile("evidence"))
    page.wait_for_function(
        "() => { const c = document.querySelector('#viewer-appearance canvas');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " for (let i = 3; i < d.length; i += 4) if (d[i] < 255) return true; return false; }"
    )
    assert before == 1.0 and opaque_share(page, "#viewer-appearance canvas") < 0.9
    expect(page.locator("#coding-caption")).to_contain_text("evidence")
    tab.screenshot("evidence-overlay")
    toggle.uncheck()
    page.wait_for_function(
        "() => { const c = document.querySelector('#viewer-appearance canvas');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " for (let i = 3; i < d.length; i += 4) if (d[i] < 255) return false; return true; }"
    )


def test_accentuating_a_dataset_example_starts_from_it_and_is_a_share_link(dashboard, open_tab):
    tab = open_tab(1280, 900)
    page = tab.page
    page.goto(f"{dashboard}/?model=synth-conv-fusion&layer=fusion.conv&unit=2&steps={TEST_STEPS}")
    wait_for_result(page)
    link = page.locator("#examples .unit-example a.accentuate").first
    expect(link).to_be_visible(timeout=60_000)
    clip = re.search(r"start\.example=(\d+)", link.get_attribute("href")).group(1)
    link.click()
    expect(page.locator("#start-note")).to_contain_text(f"Accentuating test clip {clip}")
    visualization_id = wait_for_result(page)
    assert f"start.example={clip}" in page.input_value("#share-url")
    sent = [m for m in tab.sent_messages if "start" in m]
    assert sent and sent[-1]["start"] == {"example": int(clip)}
    assert sent[-1]["settings"]["steps"] == TEST_STEPS  # the settings of the result it was offered beside
    tab.screenshot("accentuate-example")

    fresh = open_tab(390, 844)
    fresh.page.goto(page.input_value("#share-url"))
    assert wait_for_result(fresh.page) == visualization_id
    expect(fresh.page.locator("#start-note")).to_contain_text(f"test clip {clip}")
    fresh.screenshot("accentuate-shared-phone")

    page.click("#start-note .start-clear")
    expect(page.locator("#start-note")).to_be_hidden()
    assert "start." not in page.url


def test_explain_offers_to_accentuate_the_clip_for_each_top_unit(dashboard, open_tab):
    tab = open_tab(1280, 900)
    page = tab.page
    page.goto(f"{dashboard}/explain?model=synth-conv-fusion&sample=synth-wave&target=3")
    link = page.locator("#units a.accentuate").first
    expect(link).to_be_visible(timeout=60_000)
    assert "start.sample=synth-wave" in link.get_attribute("href")
    tab.screenshot("explain-accentuate")
