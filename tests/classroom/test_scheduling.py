"""The scheduling policy, pure: fair queues, interactive before background, groups and slices, estimates."""

from __future__ import annotations

import pytest

from stlens.jobs.scheduling import Capacity, FairQueue, Schedule, seconds_until_start


def test_fair_queue_lists_its_items_in_the_order_it_pops_them():
    queue: FairQueue[str] = FairQueue()
    for client, item in [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1"), ("c", "c1"), ("b", "b2")]:
        queue.push(client, item)
    listed = [item for _, item in queue.ordered()]
    assert listed == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert [queue.pop() for _ in range(6)] == listed and queue.pop() is None


def schedule(**capacity: int) -> Schedule[str]:
    return Schedule(Capacity(**capacity), group_of=lambda run: run[0])  # a run's layer: its first letter


def test_interactive_runs_go_first_and_background_ones_step_only_without_them():
    plan = schedule(max_batch=8, max_running=8, max_background=2)
    for run in ("x1", "x2", "x3"):
        plan.push(run, "atlas-client", "background")
    plan.push("y1", "student", "interactive")
    assert plan.waiting() == ["y1", "x1", "x2", "x3"]
    assert plan.admit() == ["y1", "x1", "x2"]  # two background slots
    assert plan.next_group() == ["y1"] and plan.next_group() == ["y1"]  # background waits while it runs
    plan.remove("y1")
    assert plan.next_group(background=False) == []  # its result is being finished: background still waits
    assert plan.next_group() == ["x1", "x2"]  # one batch of one layer
    plan.promote("x3")  # someone opened that unit: it jumps the queue
    assert plan.waiting() == ["x3"] and plan.admit() == ["x3"] and plan.next_group() == ["x3"]


def test_runs_of_a_layer_batch_up_to_the_limit_and_layers_take_turns():
    plan = schedule(max_batch=2, max_running=5, max_background=1)
    for run in ("a1", "a2", "a3", "b1", "c1", "c2"):
        plan.push(run, run, "interactive")
    assert plan.admit() == ["a1", "a2", "b1", "c1", "c2"]  # a3: its layer's batch is full
    turns = [plan.next_group() for _ in range(4)]
    assert turns == [["a1", "a2"], ["b1"], ["c1", "c2"], ["a1", "a2"]]
    plan.remove("a1")
    assert plan.admit() == ["a3"] and sorted(plan.running()) == ["a2", "a3", "b1", "c1", "c2"]


def test_the_wait_is_the_work_ahead_shared_by_the_slots():
    assert seconds_until_start(0, [], [], slots=4) == 0  # a free slot: at once
    assert seconds_until_start(0, [10.0], [], slots=1) == pytest.approx(10.0)
    # two running share the machine: the shorter is done after 2 x 3 s
    assert seconds_until_start(0, [3.0, 8.0], [], slots=2) == pytest.approx(6.0)
    # one ahead in the queue takes the first free slot; this one waits for the next
    assert seconds_until_start(1, [3.0, 8.0], [4.0], slots=2) == pytest.approx(6.0 + 2 * 4.0)
