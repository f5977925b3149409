"""The shared delivery layer, driven with a recording transport and a fake clock."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

from bot.delivery import (
    DeliveryLimits,
    DestinationGone,
    FormattingRejected,
    MessageGone,
    Pacer,
    RetryLater,
    StreamingReply,
    Transport,
)
from bot.delivery.pacing import CallWindow
from bot.splitter import split_message


class FakeClock:
    """Virtual time running `SPEED` times faster than the real clock, the same for every
    task, so minutes of pacing take a fraction of a second; `skip` jumps ahead."""

    SPEED = 200.0

    def __init__(self) -> None:
        self._start = time.monotonic()
        self.skipped = 1000.0

    def now(self) -> float:
        return self.skipped + (time.monotonic() - self._start) * self.SPEED

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self.SPEED)

    def skip(self, seconds: float) -> None:
        self.skipped += seconds


@dataclass
class Call:
    at: float
    kind: str  # send, edit, draft, typing
    message: int  # index of the message it concerns (-1: none)
    text: str = ""
    plain: bool = False


@dataclass
class FakeTransport(Transport[int]):
    """Records every call; `failures` maps a call number to the error it raises."""

    clock: FakeClock
    limits: DeliveryLimits = field(default_factory=lambda: DeliveryLimits(max_length=2000))
    failures: dict[int, Exception] = field(default_factory=dict)
    drafts: bool = False
    reject_formatting: bool = False
    measure_utf16: bool = False
    calls: list[Call] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # what each message shows now
    gone: bool = False

    def _check(self, call: Call) -> None:
        if self.gone:
            raise DestinationGone("the chat is gone")
        number = sum(1 for c in self.calls if c.kind != "typing")
        error = self.failures.pop(number, None)
        if error is not None:
            raise error
        if self.reject_formatting and "**" in call.text and not call.plain:
            raise FormattingRejected("can't parse entities")
        if self.rendered_length(call.text) > self.limits.max_length:
            raise AssertionError(f"a message of {len(call.text)} characters was sent")
        self.calls.append(call)

    async def send(self, text: str, *, plain: bool = False, nonce: str = "") -> int:
        self._check(Call(self.clock.now(), "send", len(self.texts), text, plain))
        self.texts.append(text)
        return len(self.texts) - 1

    async def edit(self, handle: int, text: str, *, plain: bool = False) -> None:
        self._check(Call(self.clock.now(), "edit", handle, text, plain))
        self.texts[handle] = text

    async def typing(self) -> None:
        if self.gone:
            raise DestinationGone("the chat is gone")
        self.calls.append(Call(self.clock.now(), "typing", -1))

    def rendered_length(self, text: str) -> int:
        if self.measure_utf16:
            return len(text.encode("utf-16-le")) // 2
        return len(text)

    @property
    def supports_drafts(self) -> bool:
        return self.drafts

    async def draft(self, text: str) -> None:
        self._check(Call(self.clock.now(), "draft", len(self.texts), text))

    def updates(self) -> list[Call]:
        return [call for call in self.calls if call.kind != "typing"]


def make_reply(transport: FakeTransport, pacer: Pacer | None = None) -> StreamingReply[int]:
    limits = transport.limits
    pacer = pacer or Pacer(limits.channel_messages, limits.channel_window_s, transport.clock)
    return StreamingReply(transport, pacer.window("chat-1"), pacer.clock)


async def stream(
    reply: StreamingReply[int], text: str, step: int = 7, clock: FakeClock | None = None
) -> None:
    """Append `text` in deltas of `step` characters, one every 100 ms of `clock` time."""
    await reply.start()
    for start in range(0, len(text), step):
        await reply.append(text[start : start + step])
        if clock is None:
            await asyncio.sleep(0)
        else:
            await clock.sleep(0.1)


def long_answer() -> str:
    parts = []
    for n in range(40):
        parts.append(f"Paragraph {n}: " + "words that go on and on. " * 12)
        if n % 7 == 3:
            parts.append(
                "```python\n" + "\n".join(f"x{i} = {i} * {n}" for i in range(30)) + "\n```"
            )
    return "\n\n".join(parts)


async def test_a_long_reply_arrives_whole_in_pieces_that_fit() -> None:
    transport = FakeTransport(FakeClock())
    reply = make_reply(transport)
    answer = long_answer()
    assert len(answer) > 10_000
    await stream(reply, answer)
    await reply.finish()
    # The messages end up exactly as the splitter cuts the whole answer: nothing lost,
    # nothing repeated, fences balanced in each.
    assert transport.texts == split_message(answer, 2000)
    assert len(transport.texts) >= 6
    for text in transport.texts:
        assert len(text) <= 2000
        assert sum(1 for line in text.split("\n") if line.lstrip().startswith("```")) % 2 == 0


async def test_updates_are_paced_per_message_and_per_destination() -> None:
    clock = FakeClock()
    limits = DeliveryLimits(max_length=2000, edit_interval_s=1.0, channel_messages=5,
                            channel_window_s=5.0)  # fmt: skip
    transport = FakeTransport(clock, limits=limits)
    reply = make_reply(transport)
    answer = long_answer()
    await stream(reply, answer, step=30, clock=clock)
    await reply.finish()
    assert transport.texts == split_message(answer, 2000)
    updates = transport.updates()
    assert sum(1 for call in updates if call.kind == "edit") > 20  # it did stream
    for index in {call.message for call in updates}:
        times = [call.at for call in updates if call.message == index]
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    times = [call.at for call in updates]
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 5.0) <= 5


async def test_two_replies_in_one_channel_share_its_budget() -> None:
    clock = FakeClock()
    limits = DeliveryLimits(max_length=500, channel_messages=5, channel_window_s=5.0)
    pacer = Pacer(limits.channel_messages, limits.channel_window_s, clock)
    first, second = FakeTransport(clock, limits=limits), FakeTransport(clock, limits=limits)
    replies = [make_reply(first, pacer), make_reply(second, pacer)]
    answers = ["alpha " * 400, "beta " * 400]
    await asyncio.gather(
        *(stream(r, a, step=20, clock=clock) for r, a in zip(replies, answers, strict=True))
    )
    await asyncio.gather(*(reply.finish() for reply in replies))
    assert first.texts == split_message(answers[0], 500)
    assert second.texts == split_message(answers[1], 500)
    times = sorted(call.at for call in first.updates() + second.updates())
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 5.0) <= 5


async def test_retry_after_delays_text_but_loses_none() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock, failures={1: RetryLater(7.0), 3: RetryLater(2.0)})
    reply = make_reply(transport)
    answer = "Streaming under flood control. " * 200
    await stream(reply, answer, step=30, clock=clock)
    await reply.finish()
    assert transport.texts == split_message(answer, 2000)
    # Nothing was sent while the destination was paused.
    updates = transport.updates()
    assert updates[1].at - updates[0].at >= 7.0


async def test_rejected_formatting_is_sent_again_as_plain_text() -> None:
    transport = FakeTransport(FakeClock(), reject_formatting=True)
    reply = make_reply(transport)
    await stream(reply, "This is **bold** and stays whole.")
    await reply.finish()
    assert transport.texts == ["This is **bold** and stays whole."]
    assert transport.updates()[-1].plain


async def test_a_deleted_message_is_posted_again() -> None:
    transport = FakeTransport(FakeClock(), failures={1: MessageGone("deleted")})
    reply = make_reply(transport)
    answer = "first words, then many more words " * 10
    await stream(reply, answer)
    await reply.finish()
    # The edit of the deleted message became a new message carrying the whole text.
    assert [call.kind for call in transport.updates()].count("send") == 2
    assert transport.texts[-1] == answer


async def test_a_destination_that_disappears_ends_the_reply_quietly() -> None:
    transport = FakeTransport(FakeClock())
    reply = make_reply(transport)
    await stream(reply, "the beginning of an answer " * 5)
    await asyncio.sleep(0)
    transport.gone = True
    await reply.append(" and more text that cannot be delivered")
    await asyncio.wait_for(reply.finish(), timeout=5)
    assert reply.delivered.is_set()


async def test_tool_status_is_shown_then_replaced_by_the_answer() -> None:
    clock = FakeClock()
    transport = FakeTransport(clock)
    reply = make_reply(transport)
    await reply.start()
    await reply.tool_status("web_search", "weather in Santiago")
    for _ in range(5):
        await asyncio.sleep(0)
    assert transport.texts == ["_searching the web: weather in Santiago_"]
    await clock.sleep(1)
    await reply.append("It is sunny.")
    await reply.finish()
    assert transport.texts == ["It is sunny."]


async def test_a_failure_ends_the_message_with_its_reason() -> None:
    transport = FakeTransport(FakeClock())
    reply = make_reply(transport)
    await stream(reply, "Half an answer")
    await reply.fail("the model stopped answering; try again")
    assert transport.texts == ["Half an answer\n\n⚠️ the model stopped answering; try again"]
    nothing = FakeTransport(FakeClock())
    refused = make_reply(nothing)
    await refused.fail("Slow down")  # a reply that never started still says why
    assert nothing.texts == ["⚠️ Slow down"]


async def test_drafts_show_the_live_part_and_messages_are_sent_once() -> None:
    transport = FakeTransport(FakeClock(), drafts=True, limits=DeliveryLimits(max_length=300))
    reply = make_reply(transport)
    answer = "Drafted words flow here. " * 60
    await stream(reply, answer, step=5)
    await reply.finish(note="done")
    final = answer + "\n\n_done_"
    assert transport.texts == split_message(final, 300)
    updates = transport.updates()
    assert any(call.kind == "draft" for call in updates)
    assert not any(call.kind == "edit" for call in updates)  # each message sent once, final


async def test_lengths_are_measured_the_way_the_platform_measures() -> None:
    transport = FakeTransport(
        FakeClock(), limits=DeliveryLimits(max_length=100), measure_utf16=True
    )
    reply = make_reply(transport)
    answer = "🎉🚀 emoji " * 60  # each emoji is two UTF-16 code units
    await stream(reply, answer)
    await reply.finish()
    assert "".join(transport.texts).replace(" ", "") == answer.replace(" ", "")
    assert all(len(text.encode("utf-16-le")) // 2 <= 100 for text in transport.texts)


async def test_a_call_window_counts_calls_and_pauses() -> None:
    clock = FakeClock()
    window = CallWindow(3, 10.0, clock)
    assert [await window.try_take() for _ in range(4)] == [True, True, True, False]
    assert 9.0 < await window.wait_s() <= 10.0
    clock.skip(10.0)
    assert await window.try_take(keep_free=2)
    assert not await window.try_take(keep_free=2)
    await window.pause(30.0)
    assert window.free_calls() == 0 and 29.0 < await window.wait_s() <= 30.0
    # A library's own retry, 40 s from now, counts in the windows around it.
    clock.skip(31.0)
    await window.note_call(clock.now() + 9.0)
    assert await window.try_take() and await window.try_take()
    assert not await window.try_take()  # two taken plus the retry: the budget of three


async def test_an_overall_window_bounds_the_whole_bot() -> None:
    clock = FakeClock()
    limits = DeliveryLimits(max_length=300, channel_messages=20, channel_window_s=1.0)
    overall = CallWindow(3, 1.0, clock)
    pacer = Pacer(limits.channel_messages, limits.channel_window_s, clock, overall)
    transports = [FakeTransport(clock, limits=limits) for _ in range(4)]
    replies = [
        StreamingReply(transport, pacer.window(f"chat-{n}"), clock)
        for n, transport in enumerate(transports)
    ]
    answers = [f"reply {n} " * 150 for n in range(4)]
    await asyncio.gather(
        *(stream(r, a, step=25, clock=clock) for r, a in zip(replies, answers, strict=True))
    )
    await asyncio.gather(*(reply.finish() for reply in replies))
    for transport, answer in zip(transports, answers, strict=True):
        assert transport.texts == split_message(answer, 300)  # each arrived whole
    times = sorted(call.at for t in transports for call in t.updates())
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 1.0) <= 3
