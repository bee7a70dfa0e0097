"""The dashboard: the frontend's index page at ``/`` and ``/v/{id}``, its files under ``/static``."""

from __future__ import annotations

import html
import re
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException, Path, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from ...request import ID_PATTERN, InvalidRequest
from ..deps import Services, ServicesDep
from ..errors import field_errors_text, http_status
from ..sharelink import request_from_query, share_path

router = APIRouter(tags=["pages"], include_in_schema=False)

PROBLEM_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Spacetime Lens</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/css/app.css"></head>
<body><main class="not-found"><h1>{title}</h1><p>{message}</p>{more}<p><a href="/">Start over</a></p></main>\
</body></html>
"""


def _index(services: Services) -> FileResponse:
    index = services.settings.frontend_dir / "index.html"
    if not index.is_file():
        raise HTTPException(404, f"no frontend at {services.settings.frontend_dir}")
    return FileResponse(index, media_type="text/html")


def _problem(status: int, title: str, message: str, link: str | None = None) -> HTMLResponse:
    more = f'<p><a class="same-request" href="{html.escape(link)}">Show it as computed here</a></p>' if link else ""
    page = PROBLEM_PAGE.format(title=html.escape(title), message=html.escape(message), more=more)
    return HTMLResponse(page, status_code=status)


def _not_found(message: str) -> HTMLResponse:
    return _problem(404, "Not found", message)


@router.get("/", response_class=FileResponse)
async def index_page(services: ServicesDep) -> FileResponse:
    return _index(services)


@router.get("/v/{vid:path}", name="visualization_page", response_model=None)  # any path: a bad one gets this page's 404
async def visualization_page(
    visualization_id: Annotated[str, Path(alias="vid")], request: Request, services: ServicesDep
) -> FileResponse | HTMLResponse:
    """A share link: the dashboard, whose script reads the id from the URL and shows (or computes) it.

    An id this server never saw is shown if the link carries its request (``sharelink``) and the
    request's content id here is the same id; the request is then stored, so the page computes it."""
    if re.fullmatch(ID_PATTERN, visualization_id) is None:
        return _not_found("That is not a visualisation link.")
    known = services.jobs.get(visualization_id) is not None
    if known or await services.cache.get_request(visualization_id) is not None:
        return _index(services)
    try:
        carried = request_from_query(request.query_params)
    except ValidationError as exc:
        reason = field_errors_text(exc)
        return _problem(422, "Not a valid link", f"The request this link carries is not valid: {reason}.")
    if carried is None:
        if not services.cache.available:
            return _index(services)  # it may be in the cache we cannot reach: the page says so if not
        return _not_found("No visualisation with this id is known here (it may have been evicted from the cache).")
    try:
        resolved = await services.visualizations.resolve(carried)
    except InvalidRequest as exc:
        return _problem(http_status(exc), "Cannot show this link here", exc.detail)
    if resolved.id != visualization_id:
        message = (
            f"The request this link carries gives the visualisation {resolved.id} here, not {visualization_id}: "
            f"the link was made with other weights of model {carried.model!r} or another version of the server, "
            "or its id was changed."
        )
        same_request = share_path(resolved.id, resolved.as_json())
        return _problem(409, "Not the visualisation this link names", message, same_request)
    await services.cache.put_request(visualization_id, resolved.request)
    return _index(services)


def mount_static(app: FastAPI, frontend_dir: FilePath) -> None:
    app.mount("/static", StaticFiles(directory=frontend_dir, check_dir=False), name="static")
