"""Round-robin admission between communities."""

from __future__ import annotations

from inference.fair_queue import FairQueue


def test_scopes_take_turns_and_keep_their_order() -> None:
    queue = FairQueue(extra=8)
    for n in range(3):
        queue.add(f"a{n}", {"scope": "A"})
    queue.add("b0", {"scope": "B"})
    queue.add("c0", {"scope": "C"})
    queue.add("b1", {"scope": "B"})
    assert len(queue) == 6
    assert [queue.next()[0] for _ in range(6)] == ["a0", "b0", "c0", "a1", "b1", "a2"]
    assert len(queue) == 0


def test_room_fills_the_free_slots_plus_a_lookahead() -> None:
    queue = FairQueue(extra=2)
    assert queue.room(free_slots=0) == 0  # nothing to admit into: take nothing
    assert queue.room(free_slots=3) == 5
    queue.add("x", {"scope": "A"})
    assert queue.room(free_slots=1) == 2
    assert queue.entry_ids() == ["x"]
