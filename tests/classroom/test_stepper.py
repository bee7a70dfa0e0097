"""The stepper with real runs: background work yields within one step, queued runs hear their place,
cancelled ones leave, runs of one layer share a batch, a run alone is bit for bit the same, a run
that needs a preparation waits for it beside the others."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest
import torch

from stlens.engine import Cancelled, visualize
from stlens.jobs.scheduling import Capacity
from stlens.jobs import stepper as stepper_module
from stlens.jobs.stepper import Run, Stepper
from stlens.models.builtin import builtin_entries
from stlens.models.registry import ModelRegistry
from stlens.request import VisualizationRequest, resolve
from stlens.run import Preparation, preparation

MODEL = "synth-conv-fusion"
WAIT_S = 120


@pytest.fixture(scope="module")
def registry():
    torch.set_num_threads(1)
    return ModelRegistry(builtin_entries(), torch.device("cpu"))


class Sink:
    """A run's news, as the stepper tells it."""

    def __init__(self):
        self.places: list[tuple[int, float]] = []
        self.reasons: list[str | None] = []
        self.steps: list[int] = []
        self.output = None
        self.error: Exception | None = None
        self.began = threading.Event()
        self.over = threading.Event()

    def queued(self, position: int, eta_s: float, reason: str | None = None) -> None:
        self.places.append((position, eta_s))
        self.reasons.append(reason)

    def started(self) -> None:
        self.began.set()

    def progress(self, message: str) -> None:
        self.steps.append(json.loads(message)["step"])

    def finished(self, output) -> None:
        self.output = output
        self.over.set()

    def failed(self, error: Exception) -> None:
        self.error = error
        self.over.set()


def make_run(registry, unit: int, steps: int, priority="interactive", layer="fusion.conv", client="c") -> Run:
    resolved = resolve(registry, VisualizationRequest(model=MODEL, layer=layer, unit=unit, settings={"steps": steps}))
    return Run(resolved, client, priority, Sink(), seconds_per_step=0.05)


@pytest.fixture
def stepper():
    made: list[Stepper] = []

    def make(**capacity: int) -> Stepper:
        made.append(Stepper(Capacity(**capacity), preview_interval_s=0.0))
        return made[-1]

    yield make
    for each in made:
        each.close()


def step_of(run: Run) -> int:
    return run.optimisation.step if run.optimisation is not None else 0


def test_background_work_yields_to_an_interactive_run_within_one_step(registry, stepper):
    machine = stepper(max_batch=8, max_running=8, max_background=2)
    atlas = [make_run(registry, unit, 1024, "background", layer="fusion.fc6") for unit in range(2)]
    for run in atlas:
        machine.submit(run)
    deadline = time.monotonic() + WAIT_S
    while step_of(atlas[0]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    student = make_run(registry, 5, 12)
    before = step_of(atlas[0])
    machine.submit(student)
    assert student.sink.began.wait(WAIT_S)
    at_start = step_of(atlas[0])
    assert at_start - before <= 1  # the step in flight ends, then the interactive run goes
    while student.optimisation is not None and not student.optimisation.done:
        assert step_of(atlas[0]) == at_start  # background steps wait while it runs
        time.sleep(0.005)
    assert student.sink.over.wait(WAIT_S) and student.sink.output is not None
    deadline = time.monotonic() + WAIT_S
    while step_of(atlas[0]) == at_start:  # and go on afterwards
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for run in atlas:
        run.cancel.set()


def test_waiting_runs_hear_their_place_and_a_cancelled_one_leaves(registry, stepper):
    machine = stepper(max_batch=1, max_running=1, max_background=1)
    first, second, third = (make_run(registry, unit, 16) for unit in range(3))
    machine.submit(first)
    assert first.sink.began.wait(WAIT_S)
    for run in (second, third):
        machine.submit(run)
    assert second.sink.places[0][0] == 0 and third.sink.places[0][0] == 1
    assert 0 < second.sink.places[0][1] < third.sink.places[0][1]
    second.cancel.set()
    machine.wake()
    assert second.sink.over.wait(WAIT_S) and isinstance(second.sink.error, Cancelled)
    assert third.sink.over.wait(WAIT_S) and third.sink.output is not None
    assert third.sink.places[-1][0] == 0  # it moved up when the one ahead left
    assert first.sink.output is not None and not second.sink.began.is_set()


def test_runs_of_one_layer_share_a_batch_and_each_gets_its_own_result(registry, stepper):
    machine = stepper(max_batch=8, max_running=8, max_background=1)
    runs = [make_run(registry, unit, 8, client=f"student-{unit}") for unit in (3, 9, 14)]
    for run in runs:
        machine.submit(run)
    for run in runs:
        assert run.sink.over.wait(WAIT_S) and run.sink.output is not None
        assert run.sink.steps[-1] == 8
    objectives = [run.sink.output.result.objective for run in runs]
    alone = [visualize(r.resolved.model, "fusion.conv", r.resolved.unit, r.resolved.settings) for r in runs]
    assert objectives == pytest.approx([each.objective[0] for each in alone], rel=1e-3)


def test_a_run_alone_is_the_engine_run_bit_for_bit(registry, stepper):
    machine = stepper()
    run = make_run(registry, 4, 6)
    machine.submit(run)
    assert run.sink.over.wait(WAIT_S)
    alone = visualize(run.resolved.model, "fusion.conv", 4, run.resolved.settings)
    arrays = np.load(io.BytesIO(run.sink.output.npz))
    for stream, clip in alone.inputs.items():
        assert np.array_equal(arrays[stream], clip[0])


class SlowToStore(Sink):
    """A sink whose ``finished`` waits until released: the result is still being handed over."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.handing_over = threading.Event()

    def finished(self, output) -> None:
        self.handing_over.set()
        assert self.release.wait(WAIT_S)
        super().finished(output)


def test_background_work_waits_while_an_interactive_result_is_being_finished(registry, stepper):
    machine = stepper(max_batch=8, max_running=8, max_background=2)
    atlas = make_run(registry, 0, 1024, "background", layer="fusion.fc6")
    machine.submit(atlas)
    student = make_run(registry, 5, 3)
    student.sink = SlowToStore()
    machine.submit(student)
    assert student.sink.handing_over.wait(WAIT_S)
    try:
        held = step_of(atlas)
        time.sleep(0.5)  # several of its steps' time: it takes none while the student's result is handed over
        assert step_of(atlas) == held
    finally:
        student.sink.release.set()
    assert student.sink.over.wait(WAIT_S) and student.sink.output is not None
    deadline = time.monotonic() + WAIT_S
    while step_of(atlas) == held:  # and goes on afterwards
        assert time.monotonic() < deadline
        time.sleep(0.01)
    atlas.cancel.set()


def test_a_large_group_spaces_its_previews_and_every_run_still_sees_its_first_and_last_step(registry):
    # spaced 1 s a run of the group: the 3 runs' 8 steps take well under the 3 s between two previews
    capacity = Capacity(max_batch=8, max_running=8, max_background=1)
    machine = Stepper(capacity, preview_interval_s=0.0, preview_spacing_s=1.0)
    try:
        runs = [make_run(registry, unit, 8, client=f"student-{unit}") for unit in (3, 9, 14)]
        for run in runs:
            machine.submit(run)
        for run in runs:
            assert run.sink.over.wait(WAIT_S) and run.sink.output is not None
        assert all(run.sink.steps[0] == 1 and run.sink.steps[-1] == 8 for run in runs)
        assert all(len(run.sink.steps) < 8 for run in runs)  # without the spacing: a preview every step
    finally:
        machine.close()


class Gate:
    """A preparation for the runs of one unit that waits until opened (the eigenclips' 26 s, made
    controllable), or fails while ``broken``; it counts its calls and the threads they ran on."""

    def __init__(self, unit: int):
        self.unit = unit
        self.opened = threading.Event()
        self.broken = False
        self.threads: list[str] = []

    def __call__(self, resolved) -> Preparation | None:
        if resolved.unit != self.unit or self.opened.is_set() and self.threads:
            return None  # prepared once: the next runs start at once, as they do once eigenclips are in memory
        return Preparation(("gate", str(self.unit)), "computing something once", 30.0, self.prepare)

    def prepare(self) -> None:
        self.threads.append(threading.current_thread().name)
        assert self.opened.wait(WAIT_S)
        if self.broken:
            raise RuntimeError("the clips could not be read")


def test_a_run_waits_for_its_preparation_told_why_while_the_others_step(registry, stepper, monkeypatch):
    gate = Gate(unit=7)
    monkeypatch.setattr(stepper_module, "preparation", gate)
    machine = stepper(max_batch=8, max_running=8, max_background=2)
    first, second, other = make_run(registry, 7, 6), make_run(registry, 7, 6, client="d"), make_run(registry, 3, 6)
    for run in (first, second, other):
        machine.submit(run)
    assert first.sink.reasons[0] == "computing something once" and first.sink.places[0][0] == 0
    assert 25 < first.sink.places[0][1] <= 30
    assert other.sink.over.wait(WAIT_S) and other.sink.output is not None  # not held up meanwhile
    assert not first.sink.began.is_set() and first.optimisation is None and machine.pending == 2
    gate.opened.set()
    for run in (first, second):
        assert run.sink.over.wait(WAIT_S) and run.sink.output is not None and run.sink.steps[-1] == 6
    assert gate.threads == ["stlens-prepare"]  # once for both, and not on the stepper's thread


def test_a_run_cancelled_or_failed_in_its_preparation_leaves_and_the_next_tries_again(registry, stepper, monkeypatch):
    gate = Gate(unit=7)
    monkeypatch.setattr(stepper_module, "preparation", gate)
    machine = stepper()
    leaving, failing = make_run(registry, 7, 4), make_run(registry, 7, 4, client="d")
    machine.submit(leaving)
    machine.submit(failing)
    leaving.cancel.set()
    machine.wake()
    assert leaving.sink.over.wait(WAIT_S) and isinstance(leaving.sink.error, Cancelled)
    gate.broken = True
    gate.opened.set()
    assert failing.sink.over.wait(WAIT_S) and str(failing.sink.error) == "the clips could not be read"
    assert not failing.sink.began.is_set() and machine.pending == 0
    gate.broken, gate.threads = False, []
    again = make_run(registry, 7, 4)
    machine.submit(again)
    assert again.sink.over.wait(WAIT_S) and again.sink.output is not None and len(gate.threads) == 1


def test_a_preparation_that_failed_with_no_one_waiting_is_tried_again_by_the_next_run(registry, stepper, monkeypatch):
    gate = Gate(unit=7)
    monkeypatch.setattr(stepper_module, "preparation", gate)
    machine = stepper()
    alone = make_run(registry, 7, 4)
    machine.submit(alone)
    alone.cancel.set()
    machine.wake()
    assert alone.sink.over.wait(WAIT_S) and isinstance(alone.sink.error, Cancelled)
    gate.broken = True
    gate.opened.set()  # it fails now, with no run waiting for it
    deadline = time.monotonic() + WAIT_S
    while len(gate.threads) < 1 or machine._preparations:  # ended, and forgotten
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gate.broken = False
    gate.threads.clear()
    gate.opened.clear()  # the next run's preparation waits again: it is a new one
    later = make_run(registry, 7, 4)
    machine.submit(later)
    assert later.sink.reasons == ["computing something once"]
    gate.opened.set()
    assert later.sink.over.wait(WAIT_S) and later.sink.output is not None and len(gate.threads) == 1


def test_class_logits_under_pca_are_prepared_until_their_eigenclips_are_in_memory(registry, monkeypatch):
    logits = resolve(registry, VisualizationRequest(model=MODEL, layer="logits", unit=0))
    hidden = resolve(registry, VisualizationRequest(model=MODEL, layer="fusion.conv", unit=0))
    assert logits.settings.param == "pca" and preparation(hidden) is None
    monkeypatch.setattr("stlens.run.eigenclips_ready", lambda model: False)
    monkeypatch.setattr("stlens.run.eigenclips_stored", lambda model: False)
    computing = preparation(logits)
    assert computing is not None and "computing" in computing.reason and computing.estimate_s >= 10
    monkeypatch.setattr("stlens.run.eigenclips_stored", lambda model: True)
    reading = preparation(logits)
    assert reading is not None and reading.key == computing.key and reading.estimate_s < computing.estimate_s
    monkeypatch.setattr("stlens.run.eigenclips_ready", lambda model: True)
    assert preparation(logits) is None
