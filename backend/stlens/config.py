"""Server configuration: command-line flags over ``STLENS_*`` environment variables over defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .jobs.scheduling import Capacity

REPO_FRONTEND = Path(__file__).resolve().parents[2] / "frontend"


class ServerSettings(BaseSettings):
    """Everything ``stlens serve`` can be told; each field is also ``STLENS_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="STLENS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    models: Path | None = Field(default=None, description="a model file (TOML) whose models join the built-in ones")
    include_heavy: bool = Field(default=False, description="also offer the large zoo models")
    redis_url: str | None = Field(default=None, description="an external Redis; none starts an embedded one")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    data_dir: Path = Field(
        default=Path("var"),
        description="the embedded Redis keeps its data here, and results wait here while Redis is down; "
        "one server a folder",
    )
    spill_max_bytes: int = Field(
        default=2 << 30, ge=0, le=1 << 40, description="finished results kept on disk while Redis is down, at most"
    )
    frontend_dir: Path = REPO_FRONTEND
    redis_maxmemory: str = Field(default="512mb", pattern=r"^[0-9]+(kb|mb|gb)?$")
    max_resident_models: int = Field(default=4, ge=1, le=64)
    workers: Literal["in-process", "external"] = Field(
        default="in-process", description="external: `stlens worker` processes run the jobs, taken from Redis"
    )
    max_batch: int = Field(
        default=32, ge=1, le=64, description="visualisations of one layer optimised together as one batch (1: none)"
    )
    max_running: int = Field(
        default=64, ge=1, le=1024, description="visualisations being optimised at once; the others wait their turn"
    )
    max_background: int = Field(
        default=4, ge=1, le=64, description="background ones (atlas units, prefetches) among them, one small batch"
    )
    max_pending_jobs: int = Field(default=256, ge=1, le=100_000, description="queued or running; more are refused")
    max_pending_per_client: int = Field(
        default=16, ge=1, le=100_000, description="the same, per client: a browser session, or an address without one"
    )
    max_pending_per_address: int = Field(
        default=128,
        ge=1,
        le=100_000,
        description="the same, all clients of one address together (a class of 60 behind one NAT fits)",
    )
    torch_threads: int = Field(
        default=0, ge=0, le=256, description="torch threads (the optimisation and analyses share them); 0: every core"
    )
    recent_results: int = Field(default=32, ge=1, le=4096, description="finished results kept in memory too")
    preview_interval_s: float = Field(default=0.25, ge=0.05, le=1.0, description="least time between previews")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    cache_retry_s: float = Field(default=1.0, gt=0, le=60, description="wait before reconnecting to a lost Redis")
    max_request_seconds: float = Field(
        default=600, gt=0, description="one visualisation's estimated compute time here, at most (else 422)"
    )
    max_client_seconds: float = Field(
        default=1800, gt=0, description="one client's queued and running visualisations together, at most (else 429)"
    )
    max_atlas_seconds: float = Field(default=3600, gt=0, description="one atlas's units together, at most (else 422)")
    forwarded_allow_ips: str = Field(
        default="",
        max_length=4096,
        description="comma-separated proxy addresses or networks whose X-Forwarded-For is believed ('*': any); "
        "none by default, so a client cannot pose as others",
    )
    max_connections: int = Field(default=1024, ge=1, le=1_000_000, description="open sockets in all")
    max_connections_per_client: int = Field(
        default=512, ge=1, le=1_000_000, description="open sockets of one client address (a class behind one NAT fits)"
    )
    header_timeout_s: float = Field(default=10.0, gt=0, le=600, description="time to send a request's headers")
    stalled_send_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="a client that takes none of the data waiting for it this long is dropped",
    )
    send_buffer_bytes: int = Field(default=128 * 1024, ge=4096, le=64 * 1024 * 1024, description="per socket")
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/\s?#]+(/[^\s?#]*)?$",
        description="where people reach this server (e.g. behind a proxy); share links are built from it",
    )
    allowed_hosts: str = Field(
        default="",
        max_length=4096,
        description="comma-separated extra host names this server answers to ('*.example.org'; '*': any); "
        "IP addresses, localhost, this machine's names and the public URL's host always are",
    )

    @field_validator("public_url", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        return None if value == "" else value  # STLENS_PUBLIC_URL= (set but empty, as compose passes it)

    @model_validator(mode="after")
    def _external_workers_need_a_shared_redis(self) -> ServerSettings:
        if self.workers == "external" and self.redis_url is None:
            raise ValueError("--workers external needs --redis-url: the workers take their jobs from that Redis")
        return self

    def capacity(self) -> Capacity:
        """How much the stepper runs at once (``jobs.scheduling``)."""
        return Capacity(max_batch=self.max_batch, max_running=self.max_running, max_background=self.max_background)

    def torch_device(self) -> torch.device:
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for but torch sees no CUDA device")
        if self.device != "cpu" and torch.cuda.is_available():
            return torch.device("cuda:0")
        return torch.device("cpu")
