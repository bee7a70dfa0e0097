"""Issue 14 on the page: a unit asked for while an atlas runs says where it stands in the queue, with an
estimate, then shows its previews and result; heavy work is announced and confirmed first; a running
atlas says how long it has left and whether it stops when nobody watches it, and its starter (only)
can cancel it.

The queue is made certain, not left to timing: the server optimises one visualisation at a time
(``STLENS_MAX_RUNNING=1``), and the atlas's unit that holds the slot takes the most steps there are
(tens of seconds), while the pages ask for their units within a few seconds of each other.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Page, expect

from serve_process import stlens_serve

from .helpers import TEST_STEPS, set_setting, wait_for_choices, wait_for_result

pytestmark = pytest.mark.browser

MODEL = "synth-conv-fusion"
ATLAS_LAYER = "logits"  # ten units
UNIT_LAYER = "fusion.conv"
MAX_STEPS = 1024  # the settings' most: an atlas unit that holds the one slot for tens of seconds
WIDTHS = (1920, 1280, 390)  # the tabs that queue, in the order they ask: 0, 1 and 2 ahead of them
WAIT_MS = 90_000
HEAVY = (  # the question's end: how long, and where the figure comes from
    r"takes about (\d+ min )?\d+ s here, "
    r"(estimated from the layer's operations|at the pace of this layer's last run here)\.$"
)


@pytest.fixture(scope="module")
def one_at_a_time(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dashboard that optimises one visualisation at a time: what comes while one runs waits its turn."""
    with stlens_serve(tmp_path_factory.mktemp("stlens-queue"), STLENS_MAX_RUNNING="1") as served:
        yield served.base_url


def units_of(atlas: dict, status: str) -> list[int]:
    return [u["unit"] for u in atlas["units"] if u["status"] == status]


def wait_for_running(server: httpx.Client, atlas_id: str, polls: int = 300) -> None:
    """Until the atlas's first unit is being computed (bounded: 30 s)."""
    for _ in range(polls):
        if server.get(f"/api/atlas/{atlas_id}").json()["units"][0]["status"] == "running":
            return
        time.sleep(0.1)
    raise AssertionError("the atlas's first unit did not start")


def wait_until(tab, condition, failure: str, polls: int = 300) -> None:
    """Until ``condition()`` holds of what the tab recorded (bounded: 30 s)."""
    for _ in range(polls):
        if condition():
            return
        tab.page.wait_for_timeout(100)  # lets Playwright deliver the page's events
    raise AssertionError(failure)


def queued_positions(messages: list[dict]) -> list[int]:
    """The places a run was told, each change once."""
    positions: list[int] = []
    for message in messages:
        if message.get("type") == "queued" and (not positions or positions[-1] != message["position"]):
            positions.append(message["position"])
    return positions


def test_a_unit_asked_for_during_an_atlas_says_its_place_then_runs(one_at_a_time, open_tab):
    with httpx.Client(base_url=one_at_a_time, timeout=30) as server:
        started = server.post(
            "/api/atlas", json={"model": MODEL, "layer": ATLAS_LAYER, "settings": {"steps": MAX_STEPS}}
        )
        assert started.status_code == 202, started.text
        atlas = started.json()
        try:
            wait_for_running(server, atlas["id"])  # its first unit holds the one slot
            tabs = []
            for ahead, width in enumerate(WIDTHS):
                tab = open_tab(width=width, height=900)
                query = {"model": MODEL, "layer": UNIT_LAYER, "unit": ahead + 1, "steps": TEST_STEPS}
                tab.page.goto(f"{one_at_a_time}/?{urlencode(query)}")  # a full choice runs at once
                status = tab.page.locator("#status-text")
                place = "next in line" if ahead == 0 else f"{ahead} ahead of you"
                expect(status).to_have_text(re.compile(rf"^Queued: {place}, about \d+"), timeout=WAIT_MS)
                expect(status).to_have_attribute("data-state", "queued")
                tab.screenshot(f"queued-{width}")
                tabs.append(tab)
            # the atlas's unit still held the slot while all three queued: the places above were certain
            assert server.get(f"/api/atlas/{atlas['id']}").json()["units"][0]["status"] == "running"

            for tab in tabs:  # each runs in its turn, ahead of the atlas's other units
                wait_for_result(tab.page, timeout_ms=240_000)
                expect(tab.page.locator("#status-text")).to_contain_text(re.compile(r"Done in .*\(queued \d+\.\d s"))
            last = tabs[-1]
            types = last.message_types()
            assert types.index("queued") < types.index("progress") < types.index("done")
            assert queued_positions(last.socket_messages) == [2, 1, 0]  # moved up as the others went
            assert all(m["eta_s"] >= 0 for m in last.socket_messages if m["type"] == "queued")
            shown = last.page.evaluate("window.textLog['#status-text']")
            first_preview = next(i for i, text in enumerate(shown) if text.startswith("Optimising… step"))
            assert any(text.startswith("Queued: 2 ahead of you") for text in shown[:first_preview])
            assert not any(text.startswith("Queued") for text in shown[first_preview:])  # back to progress
            assert server.get(f"/api/atlas/{atlas['id']}").json()["status"] == "running"  # it goes on after them
        finally:
            server.delete(f"/api/atlas/{atlas['id']}")  # its starter (this address) stops it


def open_atlas(page: Page, base: str, steps: int) -> None:
    """Ask for the atlas of ATLAS_LAYER from the page, saying yes when it asks first (heavy work)."""
    page.goto(base + "/")
    wait_for_choices(page)
    page.select_option("#layer", ATLAS_LAYER)
    set_setting(page, "steps", str(steps))
    body = {"model": MODEL, "layer": ATLAS_LAYER, "settings": {"steps": steps}, "atlas": True}
    heavy = httpx.post(f"{base}/api/estimates", json=body, timeout=60).json()["heavy"]
    page.click("#atlas-run")
    if heavy:
        expect(page.locator("#confirm .confirm-text")).to_have_text(re.compile(r"^This atlas \(10 units\) " + HEAVY))
        page.click("#confirm .confirm-start")
    expect(page.locator("#atlas")).to_be_visible()


def test_a_running_atlas_says_how_long_and_only_its_starter_cancels_it(one_at_a_time, open_tab):
    steps = 256  # several seconds a unit, ten units: it still runs when cancelled, well after its first unit
    starter = open_tab()
    page = starter.page
    open_atlas(page, one_at_a_time, steps)
    expect(page.locator(".atlas-eta")).to_have_text(re.compile(r"^about (\d+ min )?\d+ s left$"), timeout=WAIT_MS)
    expect(page.locator("#atlas-cancel")).to_be_visible()
    expect(page.locator(".atlas-note")).to_contain_text("stops a few seconds after nobody watches it")
    assert starter.sent_messages[-1]["run_on"] is False

    page.check("#atlas-run-on")  # keep it going: the page joins it again, asking it to run on
    expect(page.locator(".atlas-note")).to_have_text(
        re.compile("^It keeps running when you leave; Cancel atlas stops it")
    )
    assert starter.sent_messages[-1]["run_on"] is True

    others = [open_tab(width=width, height=900) for width in (1920, 390)]
    for other in others:  # another browser (another session) opens the same atlas: it joins it, not its own
        open_atlas(other.page, one_at_a_time, steps)
        expect(other.page.locator(".atlas-note")).to_have_text(
            "It keeps running when everyone leaves. Another browser started it: only that one can cancel it.",
            timeout=WAIT_MS,
        )
        expect(other.page.locator("#atlas-cancel")).to_be_hidden()  # no button that would be refused
        expect(other.page.locator(".atlas-eta")).to_have_text(re.compile(r"^about (\d+ min )?\d+ s left$"))
    page.wait_for_selector(
        ".atlas-grid .card-status[data-state=done], .atlas-grid .card-status[data-state=warn]",
        state="attached",
        timeout=WAIT_MS,
    )
    for width, tab in zip((1280, 1920, 390), [starter, *others]):
        tab.screenshot(f"atlas-running-{width}")
    assert all(m.get("yours") is False for other in others for m in other.socket_messages if m["type"] == "atlas")
    # the time left comes with each unit's news (no polling): the starter heard it with a finished unit
    finished_units = [m for m in starter.socket_messages if m["type"] == "unit" and m["status"] == "done"]
    assert finished_units and finished_units[0]["eta_s"] is not None
    expect(page.locator("#atlas-cancel")).to_be_visible()  # it still runs, and it is the starter's

    page.click("#atlas-cancel")
    expect(page.locator(".atlas-summary")).to_have_text(
        re.compile(r"^Cancelled with \d+ of 10 units finished$"), timeout=WAIT_MS
    )
    expect(page.locator(".atlas-note")).to_contain_text("the units it finished stay stored")
    expect(page.locator("#atlas-cancel")).to_be_hidden()
    expect(page.locator(".atlas-eta")).to_be_hidden()
    wait_until(starter, lambda: starter.message_types()[-1] == "done", "the atlas's socket did not end")
    final = starter.socket_messages[-1]
    assert final["cancelled"] is True
    finished, cancelled = units_of(final, "done"), units_of(final, "failed")
    assert finished and cancelled and len(finished) + len(cancelled) == 10
    tiles = page.locator(".atlas-grid .card-status")
    for unit in finished:
        expect(tiles.nth(unit)).to_have_attribute("data-state", re.compile("done|warn"))
    for unit in cancelled:
        expect(tiles.nth(unit)).to_have_text("cancelled")
    for other in others:  # the viewers who joined see it cancelled too
        expect(other.page.locator(".atlas-summary")).to_contain_text("Cancelled with", timeout=WAIT_MS)
    starter.screenshot("atlas-cancelled-1280")


def test_atlas_units_waiting_their_turn_say_queued_with_their_place_not_computing(one_at_a_time, open_tab):
    with httpx.Client(base_url=one_at_a_time, timeout=30) as server:
        body = {"model": MODEL, "layer": UNIT_LAYER, "unit": 7, "settings": {"steps": MAX_STEPS, "seed": 41}}
        busy = server.post("/api/visualizations", json=body).json()["id"]  # it holds the one slot
        try:
            for _ in range(300):
                if server.get(f"/api/visualizations/{busy}").json()["status"] == "running":
                    break
                time.sleep(0.1)
            tabs = [open_tab(width=width, height=900) for width in (1280, 1920, 390)]
            for tab in tabs:
                open_atlas(tab.page, one_at_a_time, TEST_STEPS)
                tiles = tab.page.locator(".atlas-grid .card-status")
                expect(tiles.filter(has_text=re.compile(r"^queued: (next|\d+ ahead)$")).first).to_be_visible(
                    timeout=WAIT_MS
                )
                expect(tiles.filter(has_text="computing")).to_have_count(0)  # none of them takes steps yet
                tab.screenshot(f"atlas-queued-{tab.page.viewport_size['width']}")
            assert server.get(f"/api/visualizations/{busy}").json()["status"] == "running"  # the premise held
        finally:
            server.delete(f"/api/visualizations/{busy}")  # the slot frees: the units run
    for tab in tabs:
        expect(tab.page.locator(".atlas-summary")).to_have_text("10 / 10 units", timeout=WAIT_MS)
    places = [m["position"] for m in tabs[0].socket_messages if m.get("type") == "unit" and m["status"] == "queued"]
    assert places and all(place is None or place >= 0 for place in places)


def visualisations_sent(tab) -> list[dict]:
    return [m for m in tab.sent_messages if "unit" in m]


def wait_for_sent(tab) -> list[dict]:
    """The visualisation requests the page sent, once there is one."""
    wait_until(tab, lambda: visualisations_sent(tab), "the page sent no visualisation request")
    return visualisations_sent(tab)


def test_heavy_work_is_announced_and_starts_only_when_confirmed(one_at_a_time, open_tab):
    tabs = [open_tab(width=width, height=900) for width in WIDTHS]
    for tab in tabs:
        page = tab.page
        page.goto(one_at_a_time + "/")
        wait_for_choices(page)
        page.select_option("#layer", UNIT_LAYER)
        set_setting(page, "steps", str(MAX_STEPS))
        page.click("#sweep-speed")
        panel = page.locator("#confirm")
        expect(panel).to_be_visible()
        expect(panel.locator(".confirm-text")).to_have_text(re.compile(r"^This speed sweep \(5 runs\) " + HEAVY))
        # the answer is one key away: the focus is on Start, which is described by the question
        assert page.evaluate("document.activeElement.classList.contains('confirm-start')")
        assert page.get_attribute("#confirm .confirm-start", "aria-describedby") == "confirm-text"
        tab.screenshot(f"confirm-sweep-{tab.page.viewport_size['width']}")

    tab = tabs[1]
    page = tab.page
    page.click("#confirm .confirm-cancel")
    expect(page.locator("#confirm")).to_be_hidden()
    page.click("#sweep-speed")
    expect(page.locator("#confirm")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#confirm")).to_be_hidden()
    expect(page.locator("#sweep")).to_be_hidden()
    assert not visualisations_sent(tab)  # neither answer started anything

    page.click("#sweep-speed")
    expect(page.locator("#confirm")).to_be_visible()
    page.keyboard.press("Enter")  # Start has the focus
    expect(page.locator("#confirm")).to_be_hidden()
    expect(page.locator("#sweep")).to_be_visible()
    sent = wait_for_sent(tab)
    assert sent[0]["settings"]["steps"] == MAX_STEPS
    page.click("#sweep-close")  # its viewer leaves: the server stops the run

    # a single run of the slowest layer of a bigger model, declined: nothing starts, and the page says so
    slow_model = "st-resnet-small"
    paces = httpx.get(f"{one_at_a_time}/api/models/{slow_model}/pace", timeout=60).json()["layers"]
    slowest = max(paces, key=lambda layer: paces[layer]["seconds_per_step"])
    estimate = {"model": slow_model, "layer": slowest, "settings": {"steps": MAX_STEPS}}
    assert httpx.post(f"{one_at_a_time}/api/estimates", json=estimate, timeout=60).json()["heavy"]  # the premise
    page.select_option("#model", slow_model)
    page.wait_for_selector(f"#layer option[value='{slowest}']", state="attached")
    page.select_option("#layer", slowest)
    set_setting(page, "steps", str(MAX_STEPS))
    before = len(visualisations_sent(tab))
    page.click("#visualise")
    expect(page.locator("#confirm .confirm-text")).to_have_text(re.compile(r"^This visualisation " + HEAVY))
    tab.screenshot("confirm-run-1280")
    page.click("#confirm .confirm-cancel")
    expect(page.locator("#status-text")).to_have_text("Not started.")
    assert len(visualisations_sent(tab)) == before
