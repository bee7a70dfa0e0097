"""Visualisations by content id: start one, or say where one stands.

What ``POST /api/visualizations``, ``GET /api/visualizations/{id}`` and the live socket do, apart
from HTTP: the cache answers a finished id at once, a running job is joined, and an id whose
result fell out of the cache is computed again from its stored request (to the same result: a
run is deterministic), unless that request no longer gives the same id on this server.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .analysis.starts import StartClips, UploadStart, clip_of_npz
from .budget import CostGuard
from .cache import ResultCache
from .clients import Client
from .jobs.core import Job, Jobs, Status
from .jobs.scheduling import Priority
from .models.registry import ModelRegistry
from .record import Result, ResultRecord
from .request import NotFound, ResolvedRequest, VisualizationRequest, resolve

INVALID_STORED_REQUEST = "this link's request is not valid for this server version any more; make it again"


async def uploaded_start(cache: ResultCache, request: VisualizationRequest) -> StartClips | None:
    """The uploaded clip a request starts from, as the cache keeps it (None: no such start, or gone)."""
    if not isinstance(request.start, UploadStart):
        return None
    stored = await cache.get_clip(request.start.upload)
    return clip_of_npz(stored) if stored is not None else None


@dataclass(frozen=True)
class VisualizationState:
    """Where a visualisation stands: its request as stored (JSON), and its result once done or why it failed."""

    id: str
    status: Status
    request: dict[str, Any]
    result: Result | None = None
    detail: str | None = None

    @classmethod
    def of_record(cls, visualization_id: str, record: ResultRecord) -> VisualizationState:
        return cls(visualization_id, "done", record.request.as_json(), result=record.result)


class Visualizations:
    """Starts and looks up visualisations, over the registry, the cache and the job manager."""

    def __init__(self, registry: ModelRegistry, cache: ResultCache, jobs: Jobs, costs: CostGuard | None = None):
        self.registry = registry
        self.cache = cache
        self.jobs = jobs
        self.costs = costs  # prices a new job against the budgets; None: no budgets

    async def resolve(self, request: VisualizationRequest) -> ResolvedRequest:
        """Check the request against its model (loaded in a thread); InvalidRequest if it is wrong."""
        return await asyncio.to_thread(resolve, self.registry, request, await uploaded_start(self.cache, request))

    async def start(
        self, resolved: ResolvedRequest, client: Client, keep: bool, priority: Priority = "interactive"
    ) -> Job | ResultRecord:
        """Remember the request, then answer from the cache (the record), join the running job,
        or start one (TooCostly over one request's budget, Busy past the limits or the client's budget).

        ``keep``: the job runs to the end even if no live viewer is left (HTTP clients poll).
        ``priority``: background for work nobody waits for yet (atlas units, prefetches)."""
        job = self.jobs.get(resolved.id)
        if job is not None and job.active:
            return self.jobs.submit(resolved, keep, client, priority=priority)  # joins it: no new cost
        if (record := await self.cache.get_record(resolved.id)) is not None:
            await self.cache.put_request(resolved.id, resolved.request)
            return record
        cost = await self.costs.visualization(resolved) if self.costs is not None else 0.0
        await self.cache.put_request(resolved.id, resolved.request)
        return self.jobs.submit(resolved, keep, client, cost, priority)

    async def state(self, visualization_id: str, client: Client) -> VisualizationState:
        """Where it stands; a known id that is no longer cached is started again (NotFound for an
        id this server has never seen, nor its cache)."""
        job = self.jobs.get(visualization_id)
        if job is not None and job.active:
            return VisualizationState(visualization_id, job.status, job.request.as_json())
        record = await self.cache.get_record(visualization_id)
        if record is not None:
            return VisualizationState.of_record(visualization_id, record)
        if job is not None and job.status == "failed":
            shown = job.request.as_json()
            return VisualizationState(visualization_id, "failed", shown, detail=job.detail)
        stored = await self.cache.get_request(visualization_id)
        if stored is None:
            cache_note = "" if self.cache.available else " (the cache is unreachable right now)"
            raise NotFound(f"unknown visualisation {visualization_id}{cache_note}")
        try:
            request = VisualizationRequest.model_validate(stored)
        except ValidationError:
            return VisualizationState(visualization_id, "failed", stored, detail=INVALID_STORED_REQUEST)
        resolved = await self.resolve(request)
        if resolved.id != visualization_id:
            detail = (
                "this link was made by another version of the model or of stlens (its weights or the meaning of"
                f" a setting changed); the same request is now {resolved.id}"
            )
            return VisualizationState(visualization_id, "failed", stored, detail=detail)
        started = await self.start(resolved, client, keep=True)  # known but no longer cached: compute it again
        if isinstance(started, ResultRecord):  # cached meanwhile
            return VisualizationState.of_record(visualization_id, started)
        return VisualizationState(visualization_id, started.status, stored)
