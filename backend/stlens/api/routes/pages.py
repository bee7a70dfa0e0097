"""The dashboard: the frontend's index page at ``/`` and ``/v/{id}``, its files under ``/static``."""

from __future__ import annotations

import html
import re
from pathlib import Path as FilePath

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from ..deps import Services, ServicesDep
from ..schemas import ID_PATTERN

router = APIRouter(tags=["pages"], include_in_schema=False)

NOT_FOUND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not found - Spacetime Lens</title>
<link rel="stylesheet" href="/static/css/app.css"></head>
<body><main class="not-found"><h1>Not found</h1><p>{message}</p><p><a href="/">Start over</a></p></main></body></html>
"""


def _index(s: Services) -> FileResponse:
    index = s.settings.frontend_dir / "index.html"
    if not index.is_file():
        raise HTTPException(404, f"no frontend at {s.settings.frontend_dir}")
    return FileResponse(index, media_type="text/html")


def _not_found(message: str) -> HTMLResponse:
    return HTMLResponse(NOT_FOUND_PAGE.format(message=html.escape(message)), status_code=404)


@router.get("/", response_class=FileResponse)
async def index_page(s: ServicesDep) -> FileResponse:
    return _index(s)


@router.get("/v/{vid}", name="visualization_page", response_model=None)
async def visualization_page(vid: str, s: ServicesDep) -> FileResponse | HTMLResponse:
    """A share link: the dashboard, whose script reads the id from the URL and shows (or computes) it."""
    if re.fullmatch(ID_PATTERN, vid) is None:
        return _not_found("That is not a visualisation link.")
    known = s.jobs.get(vid) is not None or await s.cache.get_request(vid) is not None
    if not known and s.cache.available:
        return _not_found("No visualisation with this id is known here (it may have been evicted from the cache).")
    return _index(s)


def mount_static(app: FastAPI, frontend_dir: FilePath) -> None:
    app.mount("/static", StaticFiles(directory=frontend_dir, check_dir=False), name="static")
