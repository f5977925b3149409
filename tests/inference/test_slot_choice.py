"""Which free sequence slot a new job takes (no model needed)."""

from __future__ import annotations

from inference.batch_engine import _Slot, _slot_value

SYSTEM = list(range(20))  # the chat template's opening and system prompt, shared by all


def best(slots: list[_Slot], prompt: list[int]) -> int:
    return max(slots, key=lambda slot: _slot_value(slot, prompt)).seq_id


def test_a_conversation_goes_back_to_its_own_slot() -> None:
    history = [*SYSTEM, *range(100, 300)]
    slots = [_Slot(0), _Slot(1, cached=history, last_used=5.0)]
    assert best(slots, [*history, 7, 8, 9]) == 1


def test_an_empty_slot_beats_another_conversation_sharing_the_system_prompt() -> None:
    other = _Slot(0, cached=[*SYSTEM, *range(500, 700)], last_used=1.0)
    empty = _Slot(1, last_used=2.0)  # used before, then cleared
    assert best([other, empty], [*SYSTEM, 1, 2, 3]) == 1


def test_among_other_conversations_the_one_losing_least_is_taken() -> None:
    long_one = _Slot(0, cached=[*SYSTEM, *range(500, 900)], last_used=1.0)
    short_one = _Slot(1, cached=[*SYSTEM, *range(900, 950)], last_used=9.0)
    assert best([long_one, short_one], [*SYSTEM, 1, 2, 3]) == 1


def test_equal_slots_go_least_recently_used_first() -> None:
    slots = [_Slot(0, cached=[1, 2], last_used=5.0), _Slot(1, cached=[3, 4], last_used=2.0)]
    assert best(slots, [9, 9, 9]) == 1
