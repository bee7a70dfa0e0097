"""The domain's errors as HTTP answers: the one place that says which error gets which status.

Non-web code raises :class:`~stlens.request.InvalidRequest` (and its kinds) and
:class:`~stlens.jobs.core.Busy`; a route lets them through and the app's handlers answer them
as the CONTRACT's 4xx (``{"detail": ...}``), or 503 with ``Retry-After`` when the server is full.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from ..jobs.core import Busy
from ..request import InvalidRequest, ModelUnavailable, NotFound, NotYours


def http_status(error: InvalidRequest | Busy) -> int:
    if isinstance(error, Busy):
        return 503 if error.whose == "server" else 429
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, NotYours):
        return 403
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


# Pydantic's messages said as what the field must be ("must be at least 0", not "Input should be greater
# than or equal to 0"), by error type, from its context; the other types keep Pydantic's words
PLAIN_MESSAGES = {
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "greater_than": "must be more than {gt}",
    "less_than": "must be less than {lt}",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "missing": "is required",
    "string_too_long": "must be at most {max_length} characters",
    "literal_error": "must be {expected}",
}


def plain_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's field errors with their ``msg`` in plain words where the type is a common one."""
    plain = []
    for item in errors:
        template = PLAIN_MESSAGES.get(str(item.get("type")))
        try:
            msg = template.format(**item.get("ctx", {})) if template else item["msg"]
        except (KeyError, IndexError):
            msg = item["msg"]
        plain.append({**item, "msg": msg})
    return plain


def plain_error_list(error: ValidationError) -> list[dict[str, Any]]:
    """A validation error's field errors in plain words, as JSON (no context, input or URL)."""
    errors = plain_errors(error.errors(include_url=False, include_input=False))
    return [{key: value for key, value in item.items() if key != "ctx"} for item in errors]


async def _invalid_input(_request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422, with a body that can always be encoded: an echoed input that is not standard
    JSON (a non-finite number, a lone surrogate, from a form or a query) is left out."""
    assert isinstance(error, RequestValidationError)
    detail = jsonable_encoder(plain_errors(error.errors()))
    try:
        json.dumps(detail, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        detail = [{key: value for key, value in item.items() if key not in ("input", "ctx")} for item in detail]
    return JSONResponse({"detail": detail}, status_code=422)


def field_errors_text(error: ValidationError) -> str:
    """Pydantic's errors as one line for people: "unit: Input should be ...; start.example: ..." (the kind a
    tagged union repeats in the path, start.example.example, said once)."""
    parts = []
    for item in plain_error_list(error):
        loc = item["loc"]
        path = ".".join(str(part) for i, part in enumerate(loc) if i == 0 or part != loc[i - 1])
        parts.append(f"{path}: {item['msg']}" if path else item["msg"])
    return "; ".join(parts)


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(InvalidRequest, _invalid_request)
    app.add_exception_handler(Busy, _busy)
    app.add_exception_handler(RequestValidationError, _invalid_input)
