"""The job manager of ``--workers in-process`` (the default): jobs run on this server's stepper.

Each job becomes a run of the stepper (``stepper.py``), which steps it alone or batched with the
other runs of its layer, off the event loop, in the order of ``scheduling``; its news comes back
to the viewers on the loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import os

import torch

from ..cache import ResultCache
from ..engine import Cancelled
from ..record import ResultRecord
from ..request import ResolvedRequest
from ..run import RunOutput, queued_message
from .core import Event, Job, JobTable, Limits
from .scheduling import Capacity
from .stepper import Run, Stepper

log = logging.getLogger(__name__)


class JobSink:
    """A job's run tells its viewers on the event loop (the stepper calls these on its threads)."""

    def __init__(self, manager: InProcessJobs, job: Job, loop: asyncio.AbstractEventLoop):
        self.manager, self.job, self.loop = manager, job, loop

    def queued(self, position: int, eta_s: float, reason: str | None = None) -> None:
        self.loop.call_soon_threadsafe(self.job.publish, Event("queued", queued_message(position, eta_s, reason)))

    def started(self) -> None:
        self.loop.call_soon_threadsafe(self.job.mark_running)

    def progress(self, message: str) -> None:
        self.loop.call_soon_threadsafe(self.job.publish, Event("progress", message))

    def finished(self, output: RunOutput) -> None:
        asyncio.run_coroutine_threadsafe(self.manager.store(self.job, output), self.loop)

    def failed(self, error: Exception) -> None:
        self.loop.call_soon_threadsafe(self.manager.failed, self.job, error)


class InProcessJobs(JobTable):
    """Runs jobs on this process's stepper; ``submit`` returns the running job of an id if there is one."""

    def __init__(
        self,
        cache: ResultCache,
        limits: Limits,
        capacity: Capacity | None = None,
        torch_threads: int = 0,
        preview_interval_s: float = 0.25,
    ):
        super().__init__(limits)
        self.cache = cache
        self._capacity = capacity or Capacity()
        self._runs: dict[str, Run] = {}
        torch.set_num_threads(torch_threads or max(1, os.cpu_count() or 1))  # process-wide
        self.stepper = Stepper(self._capacity, preview_interval_s)

    @property
    def capacity(self) -> int:
        return self._capacity.max_running

    @property
    def background_slots(self) -> int:
        return self._capacity.max_background

    def _start(self, job: Job, resolved: ResolvedRequest) -> None:
        sink = JobSink(self, job, asyncio.get_running_loop())
        run = Run(resolved, job.client.key, job.priority, sink, job.seconds_per_step, cancel=job.cancel)
        self._runs[job.id] = run
        self.stepper.submit(run)

    def _promote(self, job: Job) -> None:
        if (run := self._runs.get(job.id)) is not None:
            self.stepper.promote(run)

    async def store(self, job: Job, output: RunOutput) -> None:
        """A finished run: its record and media into the cache, then its viewers are told."""
        self._runs.pop(job.id, None)
        record = ResultRecord(request=job.request, result=output.result)
        await self.cache.put_result(job.id, record, output.npz, output.media)
        job.finish("done")

    def failed(self, job: Job, error: Exception) -> None:
        self._runs.pop(job.id, None)
        if isinstance(error, Cancelled):
            self.cancelled(job)
        else:  # a failed optimisation is reported to its viewers, never raised
            job.finish("failed", f"{type(error).__name__}: {error}")

    async def aclose(self) -> None:
        """Cancel the jobs and wait for the stepper (the lifespan's end)."""
        await asyncio.to_thread(self.shutdown)

    def shutdown(self) -> None:
        self.cancel_all()
        self.stepper.close()
