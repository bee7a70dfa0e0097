"""Which work runs next: the scheduling policy of the stepper (``stepper.py``), in-process and in a worker.

- **Interactive before background.** A person waiting at a page (a live socket, a share link being
  computed, a tour stop) is ``interactive``; atlas units and prefetches are ``background``. Waiting
  interactive runs are admitted first, and a background batch is stepped only while no interactive
  run is admitted, so an interactive request starts within one step of the running work.
- **Fair across clients.** Waiting runs of one priority are taken round-robin across clients (a
  browser session, ``stlens.clients``), first come first served within one: a client that queues
  many delays each other client by at most one run a round.
- **Batches and slices.** Admitted runs of one priority and one ``Optimisation.batch_key`` (a model
  and a layer) form a group, stepped together in one pass through the network, up to ``max_batch``
  items (1: no batching); groups take turns a step each (time-slicing). At most ``max_running`` runs
  hold their state at once; the rest wait, and are told their place and an estimate.

The manager pushes runs in and steps what :meth:`Schedule.next_group` gives; nothing else decides.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
Priority = Literal["interactive", "background"]
PRIORITIES: tuple[Priority, ...] = ("interactive", "background")  # first goes first


class FairQueue(Generic[T]):
    """Items waiting, taken round-robin across clients, FIFO within one client."""

    def __init__(self) -> None:
        self._rotation: OrderedDict[str, deque[T]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(items) for items in self._rotation.values())

    def push(self, client: str, item: T) -> None:
        self._rotation.setdefault(client, deque()).append(item)

    def pop(self) -> T | None:
        if not self._rotation:
            return None
        client = next(iter(self._rotation))
        item = self._rotation[client][0]
        self.remove(client, item)
        return item

    def ordered(self) -> Iterator[tuple[str, T]]:
        """(client, item) in the order :meth:`pop` would give them."""
        queues = [(client, list(items)) for client, items in self._rotation.items()]
        for depth in range(max((len(items) for _, items in queues), default=0)):
            for client, items in queues:
                if depth < len(items):
                    yield client, items[depth]

    def remove(self, client: str, item: T) -> None:
        """Take ``item`` out (it is being run, or it left): its client goes to the back of the line."""
        items = self._rotation.pop(client)
        items.remove(item)
        if items:
            self._rotation[client] = items


@dataclass(frozen=True)
class Capacity:
    """How much runs at once: items in one batch, runs holding state, and background runs among them."""

    max_batch: int = 32
    max_running: int = 64
    max_background: int = 4  # a background batch stays small: an interactive request waits for one of its steps


class Schedule(Generic[T]):
    """The waiting runs of each priority and the groups of admitted ones (``T``: a run, hashable)."""

    def __init__(self, capacity: Capacity, group_of: Callable[[T], Hashable]):
        self.capacity = capacity
        self._group_of = group_of  # a run's batch key
        self._waiting: dict[Priority, FairQueue[T]] = {p: FairQueue() for p in PRIORITIES}
        self._client: dict[T, str] = {}
        self._priority: dict[T, Priority] = {}
        self._groups: OrderedDict[tuple[Priority, Hashable], list[T]] = OrderedDict()  # in turn order

    def push(self, run: T, client: str, priority: Priority) -> None:
        self._waiting[priority].push(client, run)
        self._client[run], self._priority[run] = client, priority

    def waiting(self) -> list[T]:
        """The waiting runs, the next to be admitted first."""
        return [run for p in PRIORITIES for _, run in self._waiting[p].ordered()]

    def running(self) -> list[T]:
        return [run for group in self._groups.values() for run in group]

    def priority(self, run: T) -> Priority:
        return self._priority[run]

    def promote(self, run: T) -> None:
        """An interactive viewer came for a background run: from now on it is interactive."""
        if self._priority.get(run) != "background":
            return
        client = self._client[run]
        if run in self.waiting():
            self._waiting["background"].remove(client, run)
            self._waiting["interactive"].push(client, run)
        else:
            self._ungroup(run)
            self._group(run, "interactive")
        self._priority[run] = "interactive"

    def admit(self) -> list[T]:
        """Take waiting runs into groups while there is room, interactive ones first; the admitted."""
        admitted = []
        for priority in PRIORITIES:
            for client, run in list(self._waiting[priority].ordered()):
                if not self._has_room(run, priority):
                    continue
                self._waiting[priority].remove(client, run)
                self._group(run, priority)
                admitted.append(run)
        return admitted

    def _has_room(self, run: T, priority: Priority) -> bool:
        running = self.running()
        if len(running) >= self.capacity.max_running:
            return False
        if priority == "background" and sum(self._priority[r] == "background" for r in running) >= (
            self.capacity.max_background
        ):
            return False
        group = self._groups.get((priority, self._group_of(run)), [])
        return len(group) < (self.capacity.max_batch if priority == "interactive" else self.capacity.max_background)

    def next_group(self, background: bool = True) -> list[T]:
        """The runs to step next: the next group in turn of the first priority that has any (empty:
        none). ``background``: whether background groups may step now (the stepper says no while an
        interactive result is being finished)."""
        for priority in PRIORITIES if background else PRIORITIES[:1]:
            for key in list(self._groups):
                if key[0] == priority:
                    self._groups.move_to_end(key)  # its turn: the other groups of its priority go next
                    return list(self._groups[key])
        return []

    def remove(self, run: T) -> None:
        """A run finished, failed or was cancelled (waiting or admitted)."""
        if run not in self._priority:
            return
        priority = self._priority[run]
        if run in self.running():
            self._ungroup(run)
        else:
            self._waiting[priority].remove(self._client[run], run)
        del self._priority[run], self._client[run]

    def _group(self, run: T, priority: Priority) -> None:
        self._groups.setdefault((priority, self._group_of(run)), []).append(run)

    def _ungroup(self, run: T) -> None:
        key = (self._priority[run], self._group_of(run))
        self._groups[key].remove(run)
        if not self._groups[key]:
            del self._groups[key]


def seconds_until_start(position: int, running_s: Sequence[float], ahead_s: Sequence[float], slots: int) -> float:
    """About how long until the waiting run at ``position`` (0: next) is admitted, if the machine
    shares itself evenly between admitted runs: ``running_s`` is the work (seconds alone) each
    admitted run has left, ``ahead_s`` the work of each waiting run ahead of it, ``slots`` how many
    runs are admitted at most."""
    active = sorted(running_s)
    queue = deque(ahead_s[:position])
    elapsed = 0.0
    while True:
        while len(active) < slots and queue:
            active.append(queue.popleft())
            active.sort()
        if len(active) < slots or not active:
            return elapsed
        shortest = active[0]  # every admitted run advances at 1/len(active) of the machine
        elapsed += shortest * len(active)
        active = sorted(left - shortest for left in active[1:])
