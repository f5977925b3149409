"""Streaming replies through Telegram: splitting, drafts, flood control, formatting, limits."""

from __future__ import annotations

import itertools
import re

import pytest

from bot.chat_service import CANCELLED_NOTE
from bot.platforms.telegram.transport import render
from tests.bot.platforms.telegram.conftest import Telegram
from tests.bot.platforms.telegram.fake_bot_api import Json, utf16_len
from tests.fakes import ScriptedChatModel

_CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)


def _long_answer() -> str:
    prose = " ".join(f"Sentence number {i} explains one more detail." for i in range(120))
    code = "\n".join(f"    value_{i} = compute({i}) + offset  # step {i}" for i in range(160))
    return f"{prose}\n\n```python\ndef long_function():\n{code}\n```\n\n{prose} The end."


@pytest.mark.parametrize("kind", ["group", "private"])
async def test_a_long_reply_is_split_with_code_kept_as_code_and_nothing_lost(
    telegram: Telegram, model: ScriptedChatModel, kind: str
) -> None:
    answer = _long_answer()
    assert len(answer) > 10_000
    model.enqueue(answer)
    person = telegram.person()
    chat = telegram.group() if kind == "group" else telegram.private(person)
    telegram.say(chat, person, "/ask explain")

    await telegram.reply_saying(chat, "The end.")

    sent = telegram.api.sent_to(chat["id"])
    assert len(sent) >= 3
    assert all(utf16_len(s.text) <= 4096 for s in sent)
    # Every word of the answer is shown once, in order, across the messages ...
    shown = " ".join(s.text for s in sent).split()
    assert shown == render(answer)[0].split()
    # ... and the code block, cut across messages, is code in each of them.
    code = "".join(_CODE_BLOCK.findall(answer))
    assert " ".join(s.covered("pre") for s in sent).split() == code.split()
    assert telegram.api.calls_of("sendMessage")[0].status == 200


async def test_private_chats_stream_into_a_draft_then_send_the_message(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    answer = " ".join(f"word{i}" for i in range(80))
    model.enqueue(answer)
    model.token_delay_s = 0.01
    ann = telegram.person()
    chat = telegram.private(ann)
    telegram.say(chat, ann, "talk to me")

    sent = await telegram.reply_saying(chat, "word79")

    assert sent.text == answer
    drafts = telegram.api.drafts
    assert drafts, "the reply was not shown as a draft while written"
    assert all(answer.startswith(str(d.params["text"])) for d in drafts)
    assert telegram.api.calls_of("editMessageText") == []


# Slower than the other tests: the pacing checked below must stand out from the jitter of
# requests on a busy machine.
@pytest.mark.parametrize("clock_speed", [5.0])
async def test_flood_control_delays_edits_without_losing_text(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    answer = " ".join(f"token{i}" for i in range(150))
    model.enqueue(answer)
    model.token_delay_s = 0.005
    telegram.api.fail_next("sendMessage", 1, retry_after=1)
    telegram.api.fail_next("editMessageText", 3, retry_after=2)
    group = telegram.group()
    telegram.say(group, telegram.person(), "/ask stream please")

    sent = await telegram.reply_saying(group, "token149")

    assert sent.text == answer
    assert len(telegram.api.sent_to(group["id"])) == 1  # the refused send was not doubled
    edits = telegram.api.calls_of("editMessageText")
    refused = [i for i, call in enumerate(edits) if call.status == 429]
    assert len(refused) == 3
    speed = telegram.clock.speed
    for index in refused:
        if index + 1 < len(edits):  # the next try waits the two seconds asked for
            assert (edits[index + 1].at - edits[index].at) * speed >= 2 * 0.5
    accepted = [call for call in edits if call.status == 200]
    for before, after in itertools.pairwise(accepted):
        assert (after.at - before.at) * speed >= 1.0 * 0.5  # about one edit a second


async def test_rejected_formatting_is_resent_as_plain_text(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    answer = "Some **bold** words and `code` here."
    model.enqueue(answer)

    def formatted(params: Json) -> bool:
        return bool(params.get("entities"))

    description = "Bad Request: can't parse entities: unsupported start tag"
    for method in ("sendMessage", "editMessageText"):
        telegram.api.fail_next(method, 10, description=description, when=formatted)
    group = telegram.group()
    telegram.say(group, telegram.person(), "/ask format")

    sent = await telegram.reply_where(group, lambda s: s.text == answer)

    assert sent.entities == []
    assert any(c.status == 400 for c in telegram.api.calls if c.method != "getUpdates")


async def test_emoji_are_measured_in_utf16_units(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    # 3000 characters, but 4500 UTF-16 code units: more than one message holds.
    answer = " ".join(["😀"] * 1500)
    model.enqueue(answer)
    group = telegram.group()
    telegram.say(group, telegram.person(), "/ask smile")

    await telegram.reply_where(group, lambda s: s.text.count("😀") > 0)
    await telegram.adapter.in_flight.drained()

    sent = telegram.api.sent_to(group["id"])
    assert len(sent) >= 2
    assert sum(s.text.count("😀") for s in sent) == 1500
    assert all(c.status != 400 for c in telegram.api.calls_of("sendMessage"))


async def test_cancel_stops_the_reply_and_says_so(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    model.enqueue(" ".join(f"slow{i}" for i in range(2000)))
    model.token_delay_s = 0.01
    group = telegram.group()
    bob = telegram.person()
    telegram.say(group, bob, "/ask write a lot")
    await telegram.reply_where(group, lambda s: "slow" in s.text)

    telegram.say(group, bob, "/cancel")

    await telegram.reply_saying(group, "Stopping the answer.")
    stopped = await telegram.reply_saying(group, CANCELLED_NOTE.strip("()"))
    assert "slow1999" not in stopped.text


async def test_an_oversized_message_is_refused_clearly(telegram: Telegram) -> None:
    ann = telegram.person()
    chat = telegram.private(ann)
    telegram.say(chat, ann, "x" * 20_000)
    await telegram.reply_saying(chat, "Your message is 20000 characters; the limit is 16000")


async def test_a_burst_gets_one_slow_down_and_others_are_still_served(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    group = telegram.group()
    bob = telegram.person("Bob")
    for i in range(30):
        telegram.say(group, bob, f"/ask question {i}")

    await telegram.reply_saying(group, "Slow down")

    slow_downs = [s for s in telegram.api.sent_to(group["id"]) if "Slow down" in s.text]
    assert len(slow_downs) == 1
    model.enqueue("Still here for you")
    other = telegram.group()
    telegram.say(other, telegram.person("Cy"), "/ask are you alive?")
    await telegram.reply_saying(other, "Still here for you")
