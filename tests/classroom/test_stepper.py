"""The stepper with real runs: background work yields within one step, queued runs hear their place,
cancelled ones leave, runs of one layer share a batch, a run alone is bit for bit the same."""

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
from stlens.jobs.stepper import Run, Stepper
from stlens.models.builtin import builtin_entries
from stlens.models.registry import ModelRegistry
from stlens.request import VisualizationRequest, resolve

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
        self.steps: list[int] = []
        self.output = None
        self.error: Exception | None = None
        self.began = threading.Event()
        self.over = threading.Event()

    def queued(self, position: int, eta_s: float) -> None:
        self.places.append((position, eta_s))

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
