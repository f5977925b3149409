"""Saved sequence states (KV cache) kept in host RAM, for prefixes evicted from the context.

The engine has few sequence slots; when a conversation's slot goes to another one, the
KV cache of its history is lost and its next turn would re-read everything. Saving that
state here first lets the next turn restore it, which costs a memory copy instead of a
prefill. Entries are keyed by the tokens whose KV they hold, bounded by total bytes and
dropped least recently used first.
"""

from __future__ import annotations

from collections import OrderedDict


def common_prefix(a: list[int] | tuple[int, ...], b: list[int] | tuple[int, ...]) -> int:
    """How many leading tokens `a` and `b` share."""
    size = min(len(a), len(b))
    for index in range(size):
        if a[index] != b[index]:
            return index
    return size


def _is_prefix(short: tuple[int, ...], long: tuple[int, ...]) -> bool:
    return len(short) <= len(long) and long[: len(short)] == short


class HostCache:
    """An LRU of saved sequence states, keyed by their tokens and bounded by `max_bytes`.

    `max_bytes` 0 disables it: nothing is stored and `best` finds nothing. Only the thread
    that owns the engine uses it, so it takes no lock.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be 0 (off) or positive")
        self.max_bytes = max_bytes
        self.bytes_used = 0
        # Oldest first: `move_to_end` marks an entry as recently used.
        self._entries: OrderedDict[tuple[int, ...], bytes] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, tokens: list[int], data: bytes) -> bool:
        """Store the state holding `tokens`. Returns whether it was stored."""
        if not tokens or len(data) > self.max_bytes:
            return False  # also covers "disabled": every state is larger than 0 bytes
        key = tuple(tokens)
        for other in list(self._entries):
            if other != key and _is_prefix(key, other):
                # A stored state already covers these tokens: any prompt shares at least
                # as long a prefix with it, so storing this one would only waste room.
                self._entries.move_to_end(other)
                return False
        # States this one extends are dominated by it in the same way; drop them.
        for other in [other for other in self._entries if _is_prefix(other, key)]:
            self._remove(other)
        self._entries[key] = data
        self.bytes_used += len(data)
        self._evict()
        return True

    def best(self, prompt: list[int]) -> tuple[list[int], bytes] | None:
        """The stored state sharing the longest prefix with `prompt`, or None if none does.

        Among equally long prefixes the most recently used wins. The entry stays stored
        (and counts as used), so a restore that fails or is overwritten soon loses nothing.
        """
        found: tuple[int, ...] | None = None
        found_length = 0
        for key in reversed(self._entries):  # most recent first: ties keep the newest
            length = common_prefix(key, prompt)
            if length > found_length:
                found, found_length = key, length
        if found is None:
            return None
        self._entries.move_to_end(found)
        return list(found), self._entries[found]

    def discard(self, tokens: list[int]) -> None:
        """Drop the state holding `tokens` (one that failed to restore, say)."""
        key = tuple(tokens)
        if key in self._entries:
            self._remove(key)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes_used = 0

    def _remove(self, key: tuple[int, ...]) -> None:
        self.bytes_used -= len(self._entries.pop(key))

    def _evict(self) -> None:
        while self.bytes_used > self.max_bytes:
            oldest = next(iter(self._entries))
            self._remove(oldest)
