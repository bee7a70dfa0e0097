"""The pure parts of the job core: content ids, the newest-only mailbox of a viewer, the job table."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import torch

from stlens.clients import Client
from stlens.engine.settings import VisualizationSettings
from stlens.jobs.core import FINISHED_JOBS_KEPT, Busy, Event, Job, JobTable, Limits, Subscription
from stlens.jobs.scheduling import FairQueue
from stlens.models.builtin import builtin_entries
from stlens.models.registry import ModelRegistry
from stlens.request import ID_LENGTH, ResolvedRequest, VisualizationRequest, content_id, resolve


def identify(model: str, weights: str, layer: str, unit: int, settings: VisualizationSettings) -> str:
    return content_id(VisualizationRequest(model=model, layer=layer, unit=unit, settings=settings), weights)


def test_content_id_covers_model_weights_layer_unit_and_settings():
    base = ("m", "w" * 64, "layer", 3, VisualizationSettings())
    reference = identify(*base)
    assert len(reference) == ID_LENGTH and int(reference, 16) >= 0
    assert identify(*base) == reference
    assert identify("m", "w" * 64, "layer", 3, VisualizationSettings.model_validate({"steps": 128})) == reference
    changed = [
        ("n", *base[1:]),
        ("m", "v" * 64, *base[2:]),
        (*base[:2], "other", *base[3:]),
        (*base[:3], 4, base[4]),
        (*base[:4], VisualizationSettings(seed=1)),
        (*base[:4], VisualizationSettings.model_validate({"weights": {"tv_time": {"motion": 2.0}}})),
    ]
    assert len({identify(*args) for args in changed} | {reference}) == len(changed) + 1


def test_an_unset_freedom_is_the_layers_and_shares_the_id_of_asking_for_it():
    registry = ModelRegistry(builtin_entries(), torch.device("cpu"))

    def resolved(layer: str, **settings: object):
        asked = VisualizationRequest(
            model="synth-conv-fusion", layer=layer, unit=0, settings=VisualizationSettings.model_validate(settings)
        )
        return resolve(registry, asked)

    for layer, freedom in (("logits", 1.0), ("fusion.conv", 2.0), ("appearance.conv1", 2.0)):
        unset = resolved(layer)
        assert unset.settings.freedom == freedom
        assert unset.id == resolved(layer, freedom=freedom).id
        assert unset.id != resolved(layer, freedom=3.0).id
    # freedom means nothing to the other parameterisations: unset, it stays the old default
    assert resolved("fusion.conv", param="fourier").settings.freedom == 1.0


def test_a_slow_viewer_gets_only_the_newest_message():
    async def scenario() -> list[Event]:
        mailbox = Subscription()
        for step in range(1, 6):
            mailbox.offer(Event("progress", f"step {step}"))
        first = await mailbox.next()
        mailbox.offer(Event("done"))
        return [first, await mailbox.next()]

    assert asyncio.run(scenario()) == [Event("progress", "step 5"), Event("done")]


def test_a_late_viewer_starts_from_the_latest_progress_and_leaving_cancels_unkept_jobs():
    async def scenario() -> tuple[Event, bool, bool]:
        asked = VisualizationRequest(model="m", layer="l", unit=0)
        kept, unkept = Job(id="a", request=asked, keep=True), Job(id="b", request=asked)
        for job in (kept, unkept):
            job.publish(Event("progress", "step 7"))
        late = unkept.subscribe()
        first = await late.next()
        unkept.unsubscribe(late)
        kept.unsubscribe(kept.subscribe())
        return first, unkept.cancel.is_set(), kept.cancel.is_set()

    first, unkept_cancelled, kept_cancelled = asyncio.run(scenario())
    assert first == Event("progress", "step 7")
    assert unkept_cancelled and not kept_cancelled


def test_fair_queue_takes_clients_in_turn_and_each_in_order():
    queue: FairQueue[str] = FairQueue()
    for item in ("a1", "a2", "a3"):
        queue.push("a", item)
    queue.push("b", "b1")
    queue.push("c", "c1")
    assert len(queue) == 5
    assert queue.pop() == "a1"
    queue.push("b", "b2")
    assert [queue.pop() for _ in range(5)] == ["b1", "c1", "a2", "b2", "a3"]
    assert queue.pop() is None and len(queue) == 0


class RecordingTable(JobTable):
    """A job table that only notes which jobs it was asked to start."""

    def __init__(self, limits: Limits):
        super().__init__(limits)
        self.started_jobs: list[Job] = []
        self.promoted: list[Job] = []

    def _start(self, job: Job, resolved: ResolvedRequest) -> None:
        self.started_jobs.append(job)

    def _promote(self, job: Job) -> None:
        self.promoted.append(job)


def resolved_units(count: int) -> list[ResolvedRequest]:
    registry = ModelRegistry(builtin_entries(), torch.device("cpu"))
    return [
        resolve(registry, VisualizationRequest(model="synth-conv-fusion", layer="fusion.conv", unit=unit))
        for unit in range(count)
    ]


def test_the_job_table_shares_an_id_admits_within_limits_and_forgets_cancelled_jobs():
    first, second, third = resolved_units(3)
    table = RecordingTable(Limits(pending=2, per_client=1))
    job = table.submit(first, keep=False, client=Client("a"))
    assert table.submit(first, keep=True, client=Client("b")) is job and job.keep  # the same id: one job
    with pytest.raises(Busy) as refused:
        table.submit(second, keep=False, client=Client("a"))
    assert refused.value.whose == "client" and "wait for them" in refused.value.detail
    table.submit(second, keep=False, client=Client("b"))
    with pytest.raises(Busy) as full:
        table.submit(third, keep=False, client=Client("c"))
    assert full.value.whose == "server" and full.value.retry_after_s == 5
    assert table.unfinished_count() == 2 and table.started == 2 and len(table.started_jobs) == 2
    table.cancelled(job)
    assert table.get(first.id) is None and job.status == "failed" and job.latest == Event("failed")
    again = table.submit(first, keep=False, client=Client("a"))  # afresh: a new job
    assert again is not job and table.started == 3


def test_finished_jobs_are_remembered_up_to_a_bound():
    units = resolved_units(1)
    table = RecordingTable(Limits(pending=10_000, per_client=10_000))
    jobs = []
    for number in range(FINISHED_JOBS_KEPT + 5):
        resolved = dataclasses.replace(units[0], id=f"{number:020x}")
        job = table.submit(resolved, keep=True, client=Client("a"))
        job.finish("done")
        jobs.append(job)
    table.submit(dataclasses.replace(units[0], id="f" * 20), keep=True, client=Client("a"))  # forgetting happens on submit
    assert table.get(jobs[0].id) is None and table.get(jobs[-1].id) is jobs[-1]
    assert sum(table.get(job.id) is not None for job in jobs) == FINISHED_JOBS_KEPT


def test_limits_count_sessions_apart_and_their_address_together():
    units = resolved_units(1)
    table = RecordingTable(Limits(pending=100, per_client=1, per_address=3))
    students = [Client("10.0.0.1", f"student-session-{n:04d}") for n in range(4)]

    def submit(number: int, client: Client):
        return table.submit(dataclasses.replace(units[0], id=f"{number:020x}"), keep=True, client=client)

    for number, student in enumerate(students[:3]):
        submit(number, student)  # three browsers behind one address: three clients
    with pytest.raises(Busy) as own:
        submit(10, students[0])
    assert own.value.whose == "client"
    with pytest.raises(Busy) as shared:
        submit(11, students[3])
    assert shared.value.whose == "address" and "all its browsers together" in shared.value.detail
    submit(12, Client("10.0.0.2"))  # another address, no session: its own client
    assert Client("10.0.0.2").key != Client("10.0.0.2", "x" * 16).key


def test_an_interactive_request_for_a_background_job_promotes_it():
    (unit,) = resolved_units(1)
    table = RecordingTable(Limits(pending=10, per_client=10))
    job = table.submit(unit, keep=False, client=Client("atlas"), priority="background", cost_s=unit.settings.steps * 0.1)
    assert job.priority == "background" and job.seconds_per_step == pytest.approx(0.1)
    assert table.submit(unit, keep=False, client=Client("b"), priority="background") is job and not table.promoted
    assert table.submit(unit, keep=False, client=Client("c")) is job
    assert job.priority == "interactive" and table.promoted == [job]
