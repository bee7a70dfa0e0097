"""The app's long-lived parts, made in the lifespan and handed to the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from fastapi import Depends
from starlette.requests import HTTPConnection

from ..cache import EmbeddedRedis, ResultCache
from ..config import ServerSettings
from ..jobs import JobManager
from ..models.registry import ModelRegistry
from ..queue.manager import QueuedJobManager


@dataclass
class Services:
    settings: ServerSettings
    device: torch.device
    registry: ModelRegistry
    cache: ResultCache
    jobs: JobManager | QueuedJobManager
    embedded_redis: EmbeddedRedis | None


def services(connection: HTTPConnection) -> Services:
    """FastAPI dependency (HTTP and WebSocket alike)."""
    return connection.app.state.services


ServicesDep = Annotated[Services, Depends(services)]
