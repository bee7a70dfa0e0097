from __future__ import annotations

from fastapi import APIRouter

from ..deps import ServicesDep
from ..schemas import Health

router = APIRouter(tags=["health"])


@router.get("/api/health", response_model=Health)
async def get_health(services: ServicesDep) -> Health:
    """Ready when this answers; ``cache`` says whether Redis is reachable right now."""
    cache_ok = await services.cache.ping()
    return Health(
        cache="ok" if cache_ok else "down",
        device=str(services.device),
        jobs=services.jobs.unfinished_count(),
        jobs_started=services.jobs.started,
    )
