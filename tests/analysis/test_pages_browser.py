"""The Explain and Insights pages in Chromium, against the in-process test server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .test_insights import results  # noqa: F401  (the module-scoped measured results)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing")]


@pytest.fixture
def page() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.errors = errors
        yield page
        browser.close()
        assert not errors, errors


def test_explain_a_sample_and_follow_a_unit_link(server, page) -> None:
    page.goto(f"{server.base_url}/explain")
    page.wait_for_function("() => document.querySelector('#layer').options.length > 0")
    page.select_option("#sample", "synth-walk")
    page.select_option("#target", "3")
    label = page.locator("#target option[value='3']").inner_text()
    page.click("button[type=submit]")
    page.wait_for_selector("#result:not([hidden])")
    assert page.inner_text("#target-label") == label
    assert page.locator("#prediction h3").count() == 3
    assert page.locator("#strips img").count() == 4
    href = page.locator("#units a").first.get_attribute("href")
    assert href.startswith("/?model=synth-conv-fusion&layer=fusion.fc6&unit=")
    page.locator("#units button").first.click()
    page.wait_for_selector("#units .unit-example")
    assert page.locator("#units .unit-example").count() == 4
    assert page.locator("#units .examples-out a").first.get_attribute("href") == href


def test_explain_reports_a_bad_upload(server, page, tmp_path: Path) -> None:
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"not a video" * 100)
    page.goto(f"{server.base_url}/explain")
    page.wait_for_function("() => document.querySelector('#layer').options.length > 0")
    page.set_input_files("#file", str(bad))
    page.click("button[type=submit]")
    page.wait_for_function("() => document.querySelector('#status').textContent.startsWith('Error')")
    assert "could not be decoded" in page.inner_text("#status")
    assert page.errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    page.errors.clear()


def test_insights_page_shows_the_findings(server, page, results, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    from stlens.api.routes import insights as route

    path = tmp_path / "insights.json"
    path.write_text(json.dumps(results))
    monkeypatch.setattr(route, "RESULTS_PATH", path)
    page.goto(f"{server.base_url}/insights")
    page.wait_for_selector(".insight-model")
    assert page.locator(".insight-model h3").count() == 5
    # two plots over depth, a line per kind of layer: those of each stream, and the fusion layers in their own colour
    lines = page.evaluate("""[...document.querySelectorAll('.insight-model:last-child .plot canvas')]
        .map((canvas) => Chart.getChart(canvas)).filter((chart) => chart.config.type === 'line')
        .map((chart) => chart.data.datasets.map((d) => [d.stream, d.borderColor]))""")
    assert len(lines) == 2 and all(sorted(s for s, _ in plot) == ["appearance", "fusion", "motion"] for plot in lines)
    assert len({colour for plot in lines for _, colour in plot}) == 3
    bias = page.locator("a", has_text="class visualisation").first.get_attribute("href")
    assert bias == "/?model=synth-late-fusion&layer=logits&unit=5"
    page.locator(".examples-picker button").first.click()
    page.wait_for_selector(".examples-picker .unit-example")
    assert page.locator(".examples-picker .unit-example img").count() == 8
    bars = page.evaluate("Chart.getChart(document.querySelector('.examples-picker .plot canvas')).data.datasets[0].data.length")
    assert bars == 5  # one bar a replay speed
    assert "prefers" in page.locator(".examples-picker .unit-summary").first.inner_text()
    page.locator("a", has_text="clip explained").first.click()
    page.wait_for_selector("#result:not([hidden])")
    assert page.input_value("#sample") == "synth-box"
    assert page.input_value("#target") == "5"
    assert page.input_value("#model") == "synth-late-fusion"


def test_explain_an_upload_error_replaces_the_previous_result(server, page, tmp_path: Path) -> None:
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"not a video" * 100)
    page.goto(f"{server.base_url}/explain?model=synth-conv-fusion&sample=synth-walk&target=0")
    page.wait_for_selector("#result:not([hidden])")
    page.set_input_files("#file", str(bad))
    assert page.input_value("#sample") == ""  # the file is what is explained now, and the list says so
    page.click("button[type=submit]")
    page.wait_for_function("() => document.querySelector('#status').textContent.startsWith('Error')")
    assert page.locator("#result").is_hidden()  # the walk clip's result is gone, not left under the error
    page.errors.clear()  # the 400 of the bad upload
    page.select_option("#sample", "synth-run")
    assert page.evaluate("document.querySelector('#file').files.length") == 0


def test_explain_offers_dataset_examples_only_for_models_of_the_synthetic_world(server, page) -> None:
    page.goto(f"{server.base_url}/explain?model=synth-conv-fusion&sample=synth-walk&target=0")
    page.wait_for_selector("#result:not([hidden])")
    assert page.locator("#units button", has_text="dataset examples").count() == len(page.locator("#units li").all())
    zoo = [m["id"] for m in page.request.get(f"{server.base_url}/api/models").json() if not m["id"].startswith("synth-")]
    if not zoo:
        pytest.skip("no zoo model is offered here")
    page.goto(f"{server.base_url}/explain?model={zoo[0]}&sample=synth-walk&target=0")
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    assert page.locator("#units li").count() > 0
    assert page.locator("#units button", has_text="dataset examples").count() == 0


@pytest.mark.parametrize("path", ["/explain?model=synth-conv-fusion&sample=synth-walk&target=0", "/insights"])
def test_the_analysis_pages_fit_a_phone(server, page, path: str) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.base_url + path)
    page.wait_for_selector("#result:not([hidden]), .insight-model, #status:text('Error')")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


@pytest.mark.parametrize("width", [1920, 390])
def test_insights_explains_each_finding_with_titled_axes_and_readable_fonts(server, page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{server.base_url}/insights")
    page.wait_for_selector(".insight-model .plot canvas")
    assert "Deep Insights into Convolutional Networks for Video Recognition" in page.inner_text("main .lead")
    findings = page.locator(".insight-model .finding:has(.plot)")
    assert findings.count() == 8  # four findings, two models
    for summary in findings.locator(".finding-summary").all_inner_texts():
        assert summary.endswith(".") and len(summary) > 40  # a sentence, not a bare number
    charts = page.evaluate("""[...document.querySelectorAll('.plot canvas')].map((canvas) => {
      const chart = Chart.getChart(canvas);
      const scales = Object.values(chart.options.scales);
      return {
        titles: scales.map((s) => s.title.display && s.title.text),
        fonts: scales.flatMap((s) => [s.ticks.font.size, s.title.font.size]),
        width: canvas.getBoundingClientRect().right,
      };
    })""")
    assert charts
    for chart in charts:
        assert all(chart["titles"]) and min(chart["fonts"]) >= 12 and chart["width"] <= width
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_explain_warns_above_the_prediction_when_a_clip_is_unlike_the_training_data(server, page, tmp_path: Path) -> None:
    from .conftest import VIDEO_KINDS, moving_square

    page.goto(f"{server.base_url}/explain?model=synth-conv-fusion&sample=synth-walk&target=0")
    page.wait_for_selector("#result:not([hidden])")
    assert page.locator("#caveats .caveat").count() == 0  # a clip of the model's own world
    video = tmp_path / "square.mp4"
    video.write_bytes(VIDEO_KINDS["mp4"](moving_square(24)))
    page.set_input_files("#file", str(video))
    page.click("button[type=submit]")
    page.wait_for_selector("#caveats .caveat.familiarity")
    assert "does not look like what the model was trained on" in page.inner_text("#caveats")
    assert page.locator("#caveats .caveat.synthetic-world").is_visible()
    caveat, prediction = (page.locator(s).bounding_box() for s in ("#caveats", "#prediction"))
    assert caveat["y"] + caveat["height"] <= prediction["y"]  # said before the classes, not after
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "explain-unfamiliar.png"), full_page=True)
