"""Issue 6: a share link opened on another machine (a server that never saw it) shows the same thing."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .helpers import (
    canvas_is_drawn,
    first_layer_of,
    pick,
    set_setting,
    wait_for_choices,
    wait_for_result,
)

pytestmark = pytest.mark.browser


def test_share_link_is_recomputed_on_another_server(dashboard, another_dashboard, open_tab):
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    pick(page, first_layer_of(page, "fusion"), unit=2)
    set_setting(page, "seed", "7")
    page.click("#visualise")
    visualization_id = wait_for_result(page)
    page.click("#viewer-motion label:has-text('Components')")
    share_url = page.input_value("#share-url")
    assert re.search(r"[?&]seed=7(&|$)", share_url) and share_url.endswith("&coding=components")

    elsewhere = open_tab()
    elsewhere.page.goto(share_url.replace(dashboard, another_dashboard))
    assert wait_for_result(elsewhere.page) == visualization_id  # the same content id, recomputed deterministically
    assert "progress" in elsewhere.message_types()
    assert elsewhere.socket_messages[-1]["type"] == "done" and elsewhere.socket_messages[-1]["id"] == visualization_id
    expect(elsewhere.page.locator("#setting-seed")).to_have_value("7")
    expect(elsewhere.page.locator("#viewer-motion input[value=components]")).to_be_checked()
    assert canvas_is_drawn(elsewhere.page, "#viewer-motion canvas")
    elsewhere.screenshot("share-link-on-another-server")

    # A link whose request gives another id here (other weights): a clear page, and a link to this server's own.
    tampered = elsewhere.page.request.get(share_url.replace(dashboard, another_dashboard).replace(visualization_id, "0" * 20))
    assert tampered.status == 409 and "Not the visualisation this link names" in tampered.text()
    same_request = re.search(r'class="same-request" href="([^"]+)"', tampered.text())
    assert same_request is not None and same_request.group(1).startswith(f"/v/{visualization_id}?")


def test_pinned_comparison_is_recomputed_on_another_server(dashboard, another_dashboard, open_tab):
    tab = open_tab()
    page = tab.page
    page.goto(dashboard + "/")
    wait_for_choices(page)
    ids = []
    for stream in ("appearance", "motion"):
        pick(page, first_layer_of(page, stream), unit=4)
        page.click("#visualise")
        ids.append(wait_for_result(page))
        page.click("#pin")
    expect(page.locator(".pin-grid .card")).to_have_count(2)
    expect(page).to_have_url(re.compile(r"pins=[0-9a-f]+\.[\w-]+%2C[0-9a-f]+\.[\w-]+$"))

    elsewhere = open_tab()
    elsewhere.page.goto(page.url.replace(dashboard, another_dashboard))
    cards = elsewhere.page.locator(".pin-grid .card")
    expect(cards).to_have_count(2)
    for visualization_id in ids:  # each computed there under the same content id, then shown
        expect(elsewhere.page.locator(f".pin-grid .card[data-id='{visualization_id}']")).to_contain_text("objective", timeout=60_000)
    elsewhere.screenshot("pins-on-another-server")
