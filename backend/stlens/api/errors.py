"""The domain's errors as HTTP answers: the one place that says which error gets which status.

Non-web code raises :class:`~stlens.request.InvalidRequest` (and its kinds) and
:class:`~stlens.jobs.core.Busy`; a route lets them through and the app's handlers answer them
as the CONTRACT's 4xx (``{"detail": ...}``), or 503 with ``Retry-After`` when the server is full.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..jobs.core import Busy
from ..request import InvalidRequest, ModelUnavailable, NotFound


def http_status(error: InvalidRequest | Busy) -> int:
    if isinstance(error, Busy):
        return 503 if error.whose == "server" else 429
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, ModelUnavailable):
        return 503
    return 422


async def _invalid_request(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, InvalidRequest)
    return JSONResponse({"detail": error.detail}, status_code=http_status(error))


async def _busy(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, Busy)
    headers = {"Retry-After": str(error.retry_after_s)}
    return JSONResponse({"detail": error.detail}, status_code=http_status(error), headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(InvalidRequest, _invalid_request)
    app.add_exception_handler(Busy, _busy)
