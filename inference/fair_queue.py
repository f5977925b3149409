"""Fair admission between communities inside one worker.

The worker takes a few more jobs from the shared stream than it has free slots and
admits them round-robin by scope (a Discord server, a Telegram chat): one community
sending many messages at once gets one slot in turn with the others, instead of all
of them. Jobs of one scope keep their order.
"""

from __future__ import annotations

from collections import OrderedDict, deque

Entry = tuple[str, dict[str, str]]


class FairQueue:
    def __init__(self, extra: int) -> None:
        self._extra = extra
        self._by_scope: OrderedDict[str, deque[Entry]] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def room(self, free_slots: int) -> int:
        """How many more jobs to take now: enough to fill the free slots and choose."""
        if free_slots == 0:
            return 0
        return max(0, free_slots + self._extra - self._size)

    def add(self, entry_id: str, fields: dict[str, str]) -> None:
        scope = fields.get("scope", "")
        self._by_scope.setdefault(scope, deque()).append((entry_id, fields))
        self._size += 1

    def next(self) -> Entry:
        """The oldest job of the scope whose turn it is; that scope goes to the back."""
        scope, jobs = next(iter(self._by_scope.items()))
        entry = jobs.popleft()
        del self._by_scope[scope]
        if jobs:
            self._by_scope[scope] = jobs
        self._size -= 1
        return entry

    def entry_ids(self) -> list[str]:
        return [entry_id for jobs in self._by_scope.values() for entry_id, _ in jobs]
