"""The stepper: every run of this process, optimised a step at a time on one thread, in the order
``scheduling.Schedule`` gives, and finished (faithfulness, media) on a small pool beside it.

Used alike by the in-process job manager and by a ``stlens worker``: a run comes with a
:class:`RunSink`, told (on the stepper's threads) that the run waits (its place and an estimate),
started, made progress, finished or failed. Between two steps the stepper admits waiting runs
(a run that arrives while its layer's batch runs joins it at the next step), drops cancelled ones,
and picks the next group: so background work yields to an interactive request within one step,
and waits while an interactive result is being finished (its viewer still waits for it). A run
that needs a long one-off preparation first (``run.Preparation``: its model's eigenclips) waits
for it on a thread of its own, told why, while the others step.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from ..background import in_background
from ..engine import Cancelled, Progress
from ..engine.render import LayerRunner, Optimisation, Visualization, batch_key, step_together
from ..request import ResolvedRequest
from ..run import Preparation, RunOutput, finish_run, preparation, progress_message, start_optimisation
from .scheduling import Capacity, Priority, Schedule, seconds_until_start

log = logging.getLogger(__name__)

QUEUE_REPORT_EVERY_S = 2.0  # a waiting run hears again at least this often (and whenever its place changes)
HELD_BACK_CHECK_S = 0.5  # background runs held back by an interactive finish look at their cancel events this often
# a run stepping in a group of n previews at most every n x this: one preview costs a few ms to encode, and
# 30 of them every step of a 30-run batch took a third of each step on 2 cores (docs/benchmarks.md)
PREVIEW_SPACING_S = 0.05
SPEEDUP_SMOOTHING = 0.2  # weight of the newest step in the running estimate of the batching speed-up


class RunSink(Protocol):
    """Where a run's news goes; called on the stepper's threads, so each must hand it on quickly."""

    def queued(self, position: int, eta_s: float, reason: str | None = None) -> None:
        """Waiting: ``position`` runs are ahead of it (0: next), it starts in about ``eta_s``;
        ``reason``: it waits for a preparation (``run.Preparation``), not for other runs."""

    def started(self) -> None: ...

    def progress(self, message: str) -> None:
        """The WebSocket ``progress`` message, JSON-encoded (the last one may come after ``finished``)."""

    def finished(self, output: RunOutput) -> None: ...

    def failed(self, error: Exception) -> None:
        """``engine.Cancelled`` when its cancel event was set."""


@dataclass(eq=False)
class Run:
    """One request's optimisation, as the stepper holds it. ``seconds_per_step``: a step of its
    layer alone here (measured or estimated, ``stlens.step_cost``), for the estimates it is told."""

    resolved: ResolvedRequest
    client: str  # a Client's key: the fair share it waits in
    priority: Priority
    sink: RunSink
    seconds_per_step: float
    cancel: threading.Event = field(default_factory=threading.Event)
    batch_key: object = None  # what it may step together with (set from its request: engine.render.batch_key)
    optimisation: Optimisation | None = None
    compute_s: float = 0.0  # its share of the steps' time: the pace its record keeps
    start_objective: float | None = None  # after the first step (result checks: did it rise?)
    last_preview: float = float("-inf")
    reported: tuple[int, float] | None = None  # the place it was last told, and when

    def __post_init__(self) -> None:
        resolved = self.resolved
        key = batch_key(resolved.model, resolved.layer.id, resolved.settings, resolved.start_clips is not None)
        self.batch_key = key if key is not None else ("alone", id(self))

    @property
    def steps_left(self) -> int:
        done = self.optimisation.step if self.optimisation is not None else 0
        return self.resolved.settings.steps - done


def _cancelled(closing: bool) -> Cancelled:
    return Cancelled("the server stopped" if closing else "cancelled: every viewer left")


@dataclass(eq=False)
class Preparing:
    """A run waiting for its preparation (``future``, shared by the runs with its key) since ``since``."""

    run: Run
    preparation: Preparation
    future: Future[None]
    since: float = field(default_factory=time.monotonic)


class Stepper:
    """Runs every submitted run to its end, a step at a time; ``close`` cancels what is left."""

    def __init__(
        self, capacity: Capacity, preview_interval_s: float, finish_threads: int = 1,
        preview_spacing_s: float = PREVIEW_SPACING_S,
    ):
        self.capacity = capacity
        self.preview_interval_s = preview_interval_s
        self.preview_spacing_s = preview_spacing_s
        self._schedule: Schedule[Run] = Schedule(capacity, lambda run: run.batch_key)
        self._lock = threading.Condition()
        self._closing = False
        self._speedup = 1.0  # work done (seconds alone) per second of stepping: the batching's gain, measured
        self._finishing = 0  # interactive runs being finished: background ones do not step meanwhile
        self._finisher = ThreadPoolExecutor(max_workers=finish_threads, thread_name_prefix="stlens-finish")
        self._preparations: dict[tuple[str, ...], Future[None]] = {}  # by key, while under way
        self._preparing: list[Preparing] = []
        self._thread = threading.Thread(target=self._loop, name="stlens-stepper", daemon=True)
        self._thread.start()

    def submit(self, run: Run) -> None:
        """Queue a run (from any thread); it is told its place at once unless it starts right away (a
        run that needs a preparation is told so, and queued once that is done)."""
        needed = preparation(run.resolved)
        with self._lock:
            if self._closing:
                raise RuntimeError("the stepper is closed")
            if needed is not None:
                waiting = self._prepare(run, needed)
            else:
                self._schedule.push(run, run.client, run.priority)
            busy = len(self._schedule.running()) + len(self._schedule.waiting()) > 1  # others before it
            self._lock.notify()
        if needed is not None:
            self._tell_preparing([waiting])
        elif busy:
            self._report_queue(force=run)

    def _prepare(self, run: Run, needed: Preparation) -> Preparing:
        """(Under the lock.) Start ``needed``, or join the one under way with its key; ``run`` waits for it."""
        future = self._preparations.get(needed.key)
        if future is None:
            future = self._preparations[needed.key] = in_background(needed.prepare, "stlens-prepare")
            future.add_done_callback(lambda done: self._prepared(needed.key, done))
        waiting = Preparing(run, needed, future)
        run.reported = (0, waiting.since)  # the caller tells it now
        self._preparing.append(waiting)
        return waiting

    def _prepared(self, key: tuple[str, ...], done: Future[None]) -> None:
        """A preparation ended: the next run with its key prepares afresh (a failed one is tried again)."""
        with self._lock:
            if self._preparations.get(key) is done:
                del self._preparations[key]
            self._lock.notify()

    @staticmethod
    def _tell_preparing(waiting: list[Preparing]) -> None:
        """Tell runs what they wait for, and for about how long: the estimate, less the time each has
        waited; once overdue (a busy machine), a quarter of that time again, never a second forever."""
        for each in waiting:
            waited = time.monotonic() - each.since
            left = max(1.0, each.preparation.estimate_s - waited, waited / 4)
            each.run.sink.queued(0, left, each.preparation.reason)

    def _preparing_due(self) -> list[Preparing]:
        """(Under the lock.) The runs waiting for a preparation that have not heard for a while, marked
        as told now (the caller tells them, outside the lock)."""
        now = time.monotonic()
        due = [w for w in self._preparing if w.run.reported is None or now - w.run.reported[1] >= QUEUE_REPORT_EVERY_S]
        for waiting in due:
            waiting.run.reported = (0, now)
        return due

    def _end_preparations(self) -> list[tuple[Run, Exception]]:
        """(Under the lock.) Queue the runs whose preparation is done; the runs that leave instead (their
        preparation failed, they were cancelled, the stepper closes), each with what to tell it."""
        leaving: list[tuple[Run, Exception]] = []
        for waiting in list(self._preparing):
            run, future = waiting.run, waiting.future
            gone = self._closing or run.cancel.is_set()
            if not (gone or future.done()):
                continue
            self._preparing.remove(waiting)
            failure = None if gone else future.exception()
            if gone:
                leaving.append((run, _cancelled(self._closing)))
            elif failure is not None:
                log.error("run %s could not be prepared: %s", run.resolved.id, failure)
                leaving.append((run, failure if isinstance(failure, Exception) else RuntimeError(str(failure))))
            else:
                run.reported = None
                self._schedule.push(run, run.client, run.priority)
        return leaving

    def promote(self, run: Run) -> None:
        """Someone now waits at a page for this background run: it becomes interactive."""
        with self._lock:
            run.priority = "interactive"
            self._schedule.promote(run)
            self._lock.notify()

    def wake(self) -> None:
        """Look at the cancel events and preparations now (a run's was set, or one ended)."""
        with self._lock:
            self._lock.notify()

    def close(self) -> None:
        """Cancel every run and stop (the runs are told they failed with ``Cancelled``)."""
        with self._lock:
            self._closing = True
            self._lock.notify()
        self._thread.join()
        self._finisher.shutdown(wait=True)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._schedule.running()) + len(self._schedule.waiting()) + len(self._preparing)

    def _loop(self) -> None:
        closed = False
        while not closed:
            try:
                closed = self._turn()
            except Exception:  # a bug in one turn must not stop every run of the server
                log.exception("the stepper's turn failed")

    def _turn(self) -> bool:
        """Drop the cancelled runs, admit waiting ones, step one group; True once closed."""
        with self._lock:
            while True:
                closing = self._closing
                runs = self._schedule.running() + self._schedule.waiting()
                cancelled = [run for run in runs if closing or run.cancel.is_set()]
                for run in cancelled:
                    self._schedule.remove(run)
                unprepared = self._end_preparations()
                admitted = [] if closing else self._schedule.admit()
                group = [] if closing else self._schedule.next_group(background=not self._finishing)
                told = self._preparing_due()  # on a quiet machine too, where no step comes between
                if closing or cancelled or unprepared or admitted or group or told:
                    break
                # nothing to step: no runs, only background ones held back by an interactive finish, or
                # runs waiting for a preparation (which wakes the stepper when it ends)
                self._lock.wait(HELD_BACK_CHECK_S if runs else QUEUE_REPORT_EVERY_S if self._preparing else None)
        self._tell_preparing(told)
        for run in cancelled:
            run.sink.failed(_cancelled(closing))
        for run, error in unprepared:
            run.sink.failed(error)
        if closing:
            return True
        for run in admitted:
            self._start(run)
        self._report_queue()
        group = [run for run in group if run.optimisation is not None]
        if group:
            self._step(group)
        return False

    def _start(self, run: Run) -> None:
        try:
            run.optimisation = start_optimisation(run.resolved)
        except Exception as exc:  # e.g. a start clip of the wrong shape: this run fails, the others go on
            log.exception("run %s could not start", run.resolved.id)
            with self._lock:
                self._schedule.remove(run)
            run.sink.failed(exc)
            return
        run.reported = None
        run.sink.started()

    def _step(self, group: list[Run]) -> None:
        """One step of a group; its finished runs go to the finisher."""
        optimisations = [run.optimisation for run in group if run.optimisation is not None]
        model = group[0].resolved.model
        started = time.perf_counter()
        try:
            with model.lock:
                runner = LayerRunner(model, group[0].resolved.layer.id, None)
                try:
                    outputs = step_together(runner, optimisations)
                    results = {id(o): o.result(runner) for o in optimisations if o.done}
                finally:
                    runner.close()
        except Exception as exc:  # the whole group's step failed: each run is told
            log.exception("a step of %s failed", group[0].resolved.layer.id)
            with self._lock:
                for run in group:
                    self._schedule.remove(run)
            for run in group:
                run.sink.failed(exc)
            return
        elapsed = time.perf_counter() - started
        self._measure_speedup(group, elapsed)
        now = time.monotonic()
        preview_interval = max(self.preview_interval_s, len(group) * self.preview_spacing_s)
        for run, (value, clips) in zip(group, outputs):
            optimisation = run.optimisation
            assert optimisation is not None
            run.compute_s += elapsed / len(group)
            progress = Progress(optimisation.step, optimisation.steps, value, clips)
            if optimisation.step == 1:
                run.start_objective = progress.objective
            if optimisation.done or now - run.last_preview >= preview_interval:
                run.last_preview = now
                self._send_progress(run, progress)
            if optimisation.done:
                interactive = run.priority == "interactive"
                with self._lock:
                    self._schedule.remove(run)
                    self._finishing += interactive
                self._finisher.submit(self._finish, run, results[id(optimisation)], interactive)

    def _measure_speedup(self, group: list[Run], elapsed: float) -> None:
        alone = sum(run.seconds_per_step for run in group)
        if elapsed > 0 and alone > 0:
            sample = alone / elapsed
            self._speedup += SPEEDUP_SMOOTHING * (sample - self._speedup)

    @staticmethod
    def _send_progress(run: Run, progress: Progress) -> None:
        """Encode a preview here, between two steps: on a thread beside the stepper it ran while the
        network's parallel kernels did, and held up each of their threads (docs/benchmarks.md)."""
        try:
            message = progress_message(progress.step, progress.steps, progress.objective, progress.inputs)
        except Exception:  # a preview that cannot be encoded is skipped; the run goes on
            log.exception("a preview of %s could not be encoded", run.resolved.id)
            return
        run.sink.progress(json.dumps(message))

    def _finish(self, run: Run, optimised: Visualization, interactive: bool) -> None:
        """Measure and encode a finished run (``interactive``: background steps wait meanwhile); one
        cancelled meanwhile is dropped, not stored."""
        try:
            self._hand_over(run, optimised)
        finally:
            if interactive:
                with self._lock:
                    self._finishing -= 1
                    self._lock.notify()

    @staticmethod
    def _hand_over(run: Run, optimised: Visualization) -> None:
        try:
            output = finish_run(run.resolved, optimised, run.compute_s, run.start_objective)
        except Exception as exc:  # encoding failed: reported to its viewers, never raised
            log.exception("run %s could not be finished", run.resolved.id)
            run.sink.failed(exc)
            return
        if run.cancel.is_set():
            run.sink.failed(Cancelled("cancelled while its result was being encoded"))
        else:
            run.sink.finished(output)

    def _report_queue(self, force: Run | None = None) -> None:
        """Tell each waiting run its place and an estimate, when its place changed or it has not
        heard for a while (``force``: now)."""
        with self._lock:
            waiting = self._schedule.waiting()
            running = self._schedule.running()
            speedup = max(self._speedup, 1e-3)
            preparing = self._preparing_due()
        self._tell_preparing(preparing)
        work = {id(run): run.steps_left * run.seconds_per_step / speedup for run in running + waiting}
        free = max(0, self.capacity.max_running - len(running))  # the next admission takes that many at once
        now = time.monotonic()
        for index, run in enumerate(waiting):
            position = max(0, index - free)  # the runs ahead of it that hold it back (0: it starts next)
            if run.reported is not None and run is not force:
                place, when = run.reported
                if place == position and now - when < QUEUE_REPORT_EVERY_S:
                    continue
            ahead = [work[id(r)] for r in waiting[:index]]
            eta = seconds_until_start(index, [work[id(r)] for r in running], ahead, self.capacity.max_running)
            run.reported = (position, now)
            run.sink.queued(position, eta)
