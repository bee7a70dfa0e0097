"""The job manager of ``--workers in-process`` (the default): jobs run on this server's threads.

Each job's run (``stlens.run``) goes to a thread pool, off the event loop; its progress comes
back to the viewers on the loop with ``call_soon_threadsafe``. Waiting jobs are taken in the
order of ``scheduling``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from ..cache import ResultCache
from ..engine import Cancelled
from ..record import ResultRecord
from ..request import ResolvedRequest
from ..run import RunOutput, run_visualization
from .core import Event, Job, JobTable, Limits
from .scheduling import FairQueue

log = logging.getLogger(__name__)


class InProcessJobs(JobTable):
    """Runs jobs on ``threads`` threads, taken from the scheduler; ``submit`` returns the running
    job of an id if there is one."""

    def __init__(
        self,
        cache: ResultCache,
        limits: Limits,
        threads: int = 1,
        torch_threads: int = 0,
        preview_interval_s: float = 0.25,
    ):
        super().__init__(limits)
        self.cache = cache
        self.threads = threads
        self.preview_interval_s = preview_interval_s
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="stlens-job")
        self._waiting: FairQueue[tuple[Job, ResolvedRequest]] = FairQueue()
        self._busy_threads = 0
        self._closing = False
        torch.set_num_threads(torch_threads or max(1, (os.cpu_count() or 1) // threads))  # process-wide: shared out

    @property
    def capacity(self) -> int:
        return self.threads

    def _start(self, job: Job, resolved: ResolvedRequest) -> None:
        self._waiting.push(job.client.key, (job, resolved))
        self._dispatch()

    def _dispatch(self) -> None:
        """Start waiting jobs while threads are free (none once shutting down)."""
        while not self._closing and self._busy_threads < self.threads and (item := self._waiting.pop()) is not None:
            job, resolved = item
            self._busy_threads += 1
            job.task = asyncio.get_running_loop().create_task(self._run_job(job, resolved))

    async def _run_job(self, job: Job, resolved: ResolvedRequest) -> None:
        loop = asyncio.get_running_loop()
        run = loop.run_in_executor(self._executor, self._run_in_thread, job, resolved, loop)
        run.add_done_callback(self._thread_free)
        try:
            output = await run
        except Cancelled:
            self.cancelled(job)
        except Exception as exc:  # a failed optimisation is reported to its viewers, never raised
            log.exception("job %s failed", job.id)
            job.finish("failed", f"{type(exc).__name__}: {exc}")
        else:
            record = ResultRecord(request=job.request, result=output.result)
            await self.cache.put_result(job.id, record, output.npz, output.media)
            job.finish("done")

    def _thread_free(self, _run: asyncio.Future[Any]) -> None:
        self._busy_threads -= 1
        self._dispatch()

    def _run_in_thread(self, job: Job, resolved: ResolvedRequest, loop: asyncio.AbstractEventLoop) -> RunOutput:
        """The thread's part: progress goes to the job's viewers on the event loop."""
        loop.call_soon_threadsafe(job.mark_running)
        return run_visualization(
            resolved,
            job.cancel,
            lambda message: loop.call_soon_threadsafe(job.publish, Event("progress", message)),
            self.preview_interval_s,
        )

    async def aclose(self) -> None:
        """Cancel the jobs and wait for the threads (the lifespan's end)."""
        await asyncio.to_thread(self.shutdown)

    def shutdown(self) -> None:
        self._closing = True
        self.cancel_all()
        self._executor.shutdown(wait=True, cancel_futures=True)
