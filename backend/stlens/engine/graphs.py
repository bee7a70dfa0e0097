"""CUDA graph replay of the optimisation step.

On a GPU, a step of a small network is mostly the CPU launching a few hundred small kernels
(parameterisation, transforms, network, penalties, backward, Adam) one by one. Recorded once as a
CUDA graph and replayed, a step costs what its kernels cost. The step's only input that changes
from step to step is the random transform's draw: it is copied into the graph's static tensors
before each replay. Everything else the step touches (parameters, Adam's state, the network) is
updated in place, so replaying is the same computation as calling the step again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import torch

from ..models.spec import Stream
from .transforms import Draw

logger = logging.getLogger(__name__)

WARMUP_STEPS = 3  # eager steps before recording: cuDNN/cuBLAS/cuFFT pick their kernels and plans
StepOutput = tuple[torch.Tensor, dict[Stream, torch.Tensor]]  # objective values (B,), display-space clips


class GraphedStep:
    """``step`` recorded as a CUDA graph; calling it copies ``draw`` in and replays.

    The returned tensors are the graph's static outputs: valid until the next call.
    """

    def __init__(self, step: Callable[[Draw], StepOutput], draw: Draw, optimizer: torch.optim.Optimizer):
        self._draw = Draw(draw.shift_xy.clone(), draw.zoom.clone(), draw.shift_t.clone())
        for group in optimizer.param_groups:
            # fused Adam keeps its step count on the GPU already; the flag tells step() it may be recorded
            group["capturable"] = True
        optimizer.zero_grad(set_to_none=True)  # the recorded backward writes fresh gradients
        self._graph = torch.cuda.CUDAGraph()
        # thread-local: the server's other threads (another model's job, an explain request) may
        # copy and synchronise while this one records; only this thread must not
        with torch.cuda.graph(self._graph, capture_error_mode="thread_local"):
            self._output = step(self._draw)

    def __call__(self, draw: Draw) -> StepOutput:
        self._draw.copy_(draw)
        self._graph.replay()
        return self._output


def run_steps(
    step: Callable[[Draw], StepOutput], draws: Sequence[Draw], optimizer: torch.optim.Optimizer, graph: bool
) -> Iterator[StepOutput]:
    """Run ``step`` once per draw, yielding each step's output. With ``graph``, the steps after
    :data:`WARMUP_STEPS` eager ones (on a side stream, as CUDA graph recording requires) replay
    one recorded step."""
    if not graph:
        for draw in draws:
            yield step(draw)
        return
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    for draw in draws[:WARMUP_STEPS]:
        with torch.cuda.stream(side):
            output = step(draw)
        torch.cuda.current_stream().wait_stream(side)
        yield output
    rest = draws[WARMUP_STEPS:]
    if not rest:
        return
    try:
        replay: Callable[[Draw], StepOutput] = GraphedStep(step, rest[0], optimizer)
    except RuntimeError as error:
        # a model that reads a GPU value on the host in its forward (.item(), a data-dependent
        # shape) cannot be recorded; recording ran no kernel, so stepping on eagerly is the same run
        logger.warning("stepping without a CUDA graph: recording the step failed (%s)", error)
        for group in optimizer.param_groups:
            group["capturable"] = False
        replay = step
    for draw in rest:
        yield replay(draw)
