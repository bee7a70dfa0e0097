"""The page passes its own Content Security Policy (issue 16): every page and a live run, a result,
the players and the exports, with no policy violation reported by Chromium."""

from __future__ import annotations

import pytest

from .helpers import first_layer_of, pick, wait_for_choices, wait_for_result

pytestmark = pytest.mark.browser

VIOLATION_RECORDER = """
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', e =>
  window.cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`));
"""


def violations(page) -> list[str]:
    return page.evaluate("window.cspViolations")


@pytest.mark.parametrize("path", ["/", "/explain", "/insights", "/static/help.html"])
def test_each_page_loads_under_its_policy(dashboard, open_tab, path):
    tab = open_tab()
    tab.page.add_init_script(VIOLATION_RECORDER)
    response = tab.page.goto(dashboard + path)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    tab.page.wait_for_load_state("networkidle")
    assert violations(tab.page) == []


def test_a_live_run_and_its_result_pass_the_policy(dashboard, open_tab):
    tab = open_tab()
    page = tab.page
    page.add_init_script(VIOLATION_RECORDER)
    page.goto(dashboard + "/")
    wait_for_choices(page)
    pick(page, first_layer_of(page, "motion"), unit=2)
    page.click("#visualise")
    wait_for_result(page)  # previews over the socket (connect-src), drawn from data: URLs (img-src)
    assert tab.message_types()[-1] == "done"
    page.reload()  # the share link, opened from the cache
    wait_for_result(page)
    page.wait_for_load_state("networkidle")
    assert violations(page) == []
