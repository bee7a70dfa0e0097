"""Share links that carry their request, so that they work on a server that never saw the id.

A link is ``/v/{id}?model=..&layer=..&unit=..&<settings>``: the settings that differ from the
defaults, as dotted paths (``weights.tv_time.motion=100``), the same keys as the page's own
address, and a start clip as ``start.example=3`` (``start.sample``, ``start.upload``). A server
that does not know the id reads the request back from the query, and shows it
only if the request's content id is the link's id (the same model weights, the same defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ValidationError

from ..analysis.starts import START_KINDS
from ..engine.settings import VisualizationSettings
from ..request import VisualizationRequest

REQUEST_KEYS = ("model", "layer", "unit")


def _leaf_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The dotted paths of every leaf setting, in declaration order."""
    paths = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths += _leaf_paths(annotation, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


SETTING_PATHS = _leaf_paths(VisualizationSettings)


def _text(value: Any) -> str:
    """A query value: whole floats without ``.0`` (as the page writes them), others exactly (repr round-trips)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def share_query(request: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The query of a stored request ({model, layer, unit, settings}): its non-default settings only."""
    settings = VisualizationSettings.model_validate(request.get("settings", {}))
    changed = settings.model_dump(mode="json", exclude_defaults=True)
    entries = [(key, _text(request[key])) for key in REQUEST_KEYS]
    for path in SETTING_PATHS:
        node: Any = changed
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            entries.append((".".join(path), _text(node)))
    for kind, value in (request.get("start") or {}).items():
        entries.append((f"start.{kind}", _text(value)))
    return entries


def share_path(visualization_id: str, request: Mapping[str, Any]) -> str:
    """``/v/{id}?<request>``; just ``/v/{id}`` for a stored request this server version cannot read."""
    try:
        return f"/v/{visualization_id}?{urlencode(share_query(request))}"
    except (KeyError, ValidationError):
        return f"/v/{visualization_id}"


def request_from_query(params: Mapping[str, str]) -> VisualizationRequest | None:
    """The request a share link carries, None if it carries none (a plain ``/v/{id}``).

    Keys that are not part of a request (how the page shows it: ``coding``, ``pins``...) are ignored.
    Raises ValidationError for a request that is not valid."""
    if not all(key in params for key in REQUEST_KEYS):
        return None
    settings: dict[str, Any] = {}
    for path in SETTING_PATHS:
        value = params.get(".".join(path))
        if value is None:
            continue
        node = settings
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    start: dict[str, int | str] = {kind: params[f"start.{kind}"] for kind in START_KINDS if f"start.{kind}" in params}
    if "example" in start:  # the start's example index is strictly an int: the query's text is converted here
        text = str(start["example"])
        start["example"] = int(text) if text.isdigit() else text
    fields = {key: params[key] for key in REQUEST_KEYS}
    request = {**fields, "settings": settings, **({"start": start} if start else {})}
    return VisualizationRequest.model_validate(request, strict=False)  # a query's values are text: "3" is 3
