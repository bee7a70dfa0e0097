"""The pure parts of the job runner: content ids and the newest-only mailbox of a viewer."""

from __future__ import annotations

import asyncio

from stlens.engine.settings import VisualizationSettings
from stlens.jobs import ID_LENGTH, Event, FairQueue, Job, Subscription, content_id


def test_content_id_covers_model_weights_layer_unit_and_settings():
    base = ("m", "w" * 64, "layer", 3, VisualizationSettings())
    reference = content_id(*base)
    assert len(reference) == ID_LENGTH and int(reference, 16) >= 0
    assert content_id(*base) == reference
    assert content_id("m", "w" * 64, "layer", 3, VisualizationSettings.model_validate({"steps": 128})) == reference
    changed = [
        ("n", *base[1:]),
        ("m", "v" * 64, *base[2:]),
        (*base[:2], "other", *base[3:]),
        (*base[:3], 4, base[4]),
        (*base[:4], VisualizationSettings(seed=1)),
        (*base[:4], VisualizationSettings.model_validate({"weights": {"tv_time": {"motion": 2.0}}})),
    ]
    assert len({content_id(*args) for args in changed} | {reference}) == len(changed) + 1


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
        kept, unkept = Job(id="a", request={}, keep=True), Job(id="b", request={})
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
