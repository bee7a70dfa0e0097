"""Which waiting job runs next: the scheduling policy of the in-process job manager.

Round-robin across clients, first come first served within one client: a client that queues
many jobs delays each other client by at most one job a round. This is the one place to change
the order (priorities, batching): the manager only pushes jobs in and pops the next one out.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    """Items waiting for a worker, taken round-robin across clients, FIFO within one client."""

    def __init__(self) -> None:
        self._rotation: OrderedDict[str, deque[T]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(items) for items in self._rotation.values())

    def push(self, client: str, item: T) -> None:
        self._rotation.setdefault(client, deque()).append(item)

    def pop(self) -> T | None:
        if not self._rotation:
            return None
        client, items = next(iter(self._rotation.items()))
        item = items.popleft()
        del self._rotation[client]
        if items:
            self._rotation[client] = items  # back of the line
        return item
