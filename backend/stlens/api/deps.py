"""The app's long-lived parts, made in the lifespan and handed to every route by one dependency."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated

import torch
from fastapi import Depends
from starlette.requests import HTTPConnection

from ..analysis.unit_examples import ExampleIndex
from ..analysis.video import DecodePool
from ..atlas import AtlasManager
from ..cache import ResultCache
from ..config import ServerSettings
from ..jobs.core import Jobs
from ..models.registry import ModelRegistry
from ..redis_server import EmbeddedRedis
from ..visualizations import Visualizations


@dataclass
class Services:
    settings: ServerSettings
    device: torch.device
    registry: ModelRegistry
    cache: ResultCache
    jobs: Jobs
    visualizations: Visualizations
    atlases: AtlasManager
    embedded_redis: EmbeddedRedis | None
    examples: ExampleIndex  # the dataset examples of the units asked for, indexed a layer at a time
    decoders: DecodePool = field(default_factory=DecodePool)  # uploads, decoded on their own bounded pool
    explaining: threading.Lock = field(default_factory=threading.Lock)  # one explanation at a time: each takes the CPU


def services(connection: HTTPConnection) -> Services:
    """FastAPI dependency (HTTP and WebSocket alike)."""
    return connection.app.state.services


def client_of(connection: HTTPConnection) -> str:
    """Who is asking, for the per-client limits and fair shares: the peer's address."""
    return connection.client.host if connection.client else ""


ServicesDep = Annotated[Services, Depends(services)]
