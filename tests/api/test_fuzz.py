"""The OpenAPI schema fuzzed with Schemathesis: whatever a client sends, never a server error.

The one 5xx that is by design is load shedding: a 503 with ``Retry-After`` when the server already has
as much queued work as it accepts (many fuzzed atlases can reach that). Any other 5xx fails.
"""

from __future__ import annotations

import pytest

from stlens.api import create_app
from stlens.config import ServerSettings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install -e .[test])")
from hypothesis import HealthCheck, settings  # noqa: E402  (hypothesis comes with schemathesis)
from schemathesis.checks import not_a_server_error  # noqa: E402

# the schema of an app that is never started: the same routes as the live server's
schema = schemathesis.openapi.from_dict(create_app(ServerSettings()).openapi())


def not_a_server_error_but_load_shedding(ctx, response, case):
    headers = {name.lower() for name in response.headers}
    if response.status_code == 503 and "retry-after" in headers and "detail" in response.json():
        return None
    return not_a_server_error(ctx, response, case)


@schema.parametrize()
@settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, server):
    case.call_and_validate(base_url=server.base_url, checks=[not_a_server_error_but_load_shedding])
