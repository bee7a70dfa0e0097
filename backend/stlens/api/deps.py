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
from ..clients import SESSION_COOKIE, SESSION_HEADER, Client, session_or_none
from ..config import ServerSettings
from ..estimates import Estimates
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
    estimates: Estimates
    embedded_redis: EmbeddedRedis | None
    examples: ExampleIndex  # the dataset examples of the units asked for, indexed a layer at a time
    decoders: DecodePool = field(default_factory=DecodePool)  # uploads, decoded on their own bounded pool
    explaining: threading.Lock = field(default_factory=threading.Lock)  # one explanation at a time: each takes the CPU


def services(connection: HTTPConnection) -> Services:
    """FastAPI dependency (HTTP and WebSocket alike)."""
    return connection.app.state.services


def client_of(connection: HTTPConnection) -> Client:
    """Who is asking, for every per-client limit, budget and fair share: the browser session the page
    was given (its cookie) or a script's ``X-Stlens-Session`` header, at the peer's address (the
    proxy's client where ``--forwarded-allow-ips`` trusts it). No valid session: the address alone."""
    token = connection.cookies.get(SESSION_COOKIE) or connection.headers.get(SESSION_HEADER)
    address = connection.client.host if connection.client else ""
    return Client(address=address, session=session_or_none(token))


ServicesDep = Annotated[Services, Depends(services)]
