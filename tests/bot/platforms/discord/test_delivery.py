"""Streaming within Discord's limits, and what happens when Discord pushes back."""

from __future__ import annotations

import re

import discord

from bot.delivery import CallWindow, MonotonicClock, StreamingReply
from bot.platforms.discord.transport import ChannelReply
from tests.bot.platforms.discord.conftest import Running
from tests.bot.platforms.discord.fake_discord import FakeDiscord
from tests.bot.platforms.discord.fake_world import BOT_ID, GENERAL, OTHER
from tests.bot.platforms.discord.test_messages import no_mentions_anywhere
from tests.bot.platforms.discord.test_slash import answer
from tests.fakes import ScriptedChatModel

_FENCE = re.compile(r"^```\w*$")


def long_answer() -> str:
    parts = []
    for index in range(40):
        parts.append(f"Section {index} explains the next snippet in plain words. " * 3)
        code = "\n".join(f"value_{index}_{line} = {line} * 2" for line in range(8))
        parts.append(f"```python\n{code}\n```")
    return "\n\n".join(parts)


def words_outside_fences(text: str) -> list[str]:
    return " ".join(line for line in text.splitlines() if not _FENCE.match(line)).split()


def most_calls_in_any_window(fake: FakeDiscord, channel: int, window_s: float = 5.0) -> int:
    times = sorted(
        call.at for call in fake.message_calls() if call.path.startswith(f"/channels/{channel}/")
    )
    return max(
        (
            sum(1 for later in times[i:] if later - start < window_s)
            for i, start in enumerate(times)
        ),
        default=0,
    )


def streaming(model: ScriptedChatModel, words: int) -> str:
    model.token_delay_s = 0.01
    answer = " ".join(f"w{index}" for index in range(words))
    model.enqueue(answer)
    return answer


async def test_a_long_reply_is_split_with_balanced_fences_and_paced(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    answer = long_answer()
    assert len(answer) > 10_000
    model.enqueue(answer)
    await fake.message(f"<@{BOT_ID}> explain everything", mentions_bot=True)
    await bot.replied(fake, GENERAL)
    texts = fake.texts(GENERAL)
    assert len(texts) >= 6
    assert all(len(text) <= 2000 for text in texts)
    for text in texts:  # every message's code blocks are closed in that message
        assert sum(1 for line in text.splitlines() if _FENCE.match(line)) % 2 == 0
    assert words_outside_fences("\n".join(texts)) == words_outside_fences(answer)
    assert not [call for call in fake.calls if call.status == 400]
    assert most_calls_in_any_window(fake, GENERAL) <= 5
    assert no_mentions_anywhere(fake)


async def test_a_long_slash_command_answer_continues_in_follow_ups(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    text = long_answer()
    model.enqueue(text)
    token = await fake.slash("ask", [{"name": "question", "type": 3, "value": "everything"}])
    await answer(fake, bot, token)
    pieces = fake.interaction_texts(token)  # the original response, then follow-ups
    assert len(pieces) >= 6
    assert all(len(piece) <= 2000 for piece in pieces)
    assert words_outside_fences("\n".join(pieces)) == words_outside_fences(text)
    assert no_mentions_anywhere(fake)


async def test_a_429_on_an_edit_loses_no_text(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    # As behind Cloudflare: discord.py waits and retries itself; the adapter sees it too.
    fake.rate_limit("PATCH", r"/channels/\d+/messages/\d+", times=1, retry_after=0.3)
    answer = streaming(model, 200)
    await fake.message(f"<@{BOT_ID}> go", mentions_bot=True)
    await bot.replied(fake, GENERAL)
    assert fake.texts(GENERAL) == [answer]
    assert [call.status for call in fake.calls].count(429) == 1
    assert bot.adapter.rate_limits_seen == 1


async def test_a_429_discord_py_does_not_retry_loses_no_text(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    # Without Cloudflare's Via header discord.py raises; the delivery layer waits instead.
    fake.rate_limit("PATCH", r"/channels/\d+/messages/\d+", times=2, retry_after=0.3, via=False)
    answer = streaming(model, 200)
    await fake.message(f"<@{BOT_ID}> go", mentions_bot=True)
    await bot.replied(fake, GENERAL)
    assert fake.texts(GENERAL) == [answer]
    assert [call.status for call in fake.calls].count(429) == 2


async def test_a_reply_deleted_while_answering_is_posted_again(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    answer = streaming(model, 300)
    await fake.message(f"<@{BOT_ID}> go", mentions_bot=True)
    await fake.wait_for(lambda: bool(fake.channel_messages(GENERAL)))
    first = int(fake.channel_messages(GENERAL)[0]["id"])
    fake.deleted.add(first)
    await bot.settled()
    live = [m["content"] for m in fake.channel_messages(GENERAL) if int(m["id"]) != first]
    assert live == [answer]


async def test_losing_the_channel_mid_reply_ends_that_reply_only(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    streaming(model, 300)
    await fake.message(f"<@{BOT_ID}> go", mentions_bot=True)
    await fake.wait_for(lambda: bool(fake.channel_messages(GENERAL)))
    fake.forbidden_channels.add(GENERAL)
    await bot.settled()
    refused = [call for call in fake.calls if call.status == 403]
    assert len(refused) == 1  # nothing more was tried there
    model.token_delay_s = 0.0
    model.enqueue("still here")
    await fake.message(f"<@{BOT_ID}> hello?", channel=OTHER, mentions_bot=True)
    await fake.wait_for(lambda: fake.texts(OTHER) == ["still here"])


async def test_a_message_sent_again_under_its_nonce_is_created_once(
    fake: FakeDiscord, bot: Running
) -> None:
    # A process that took a reply over, with no record of the message the dead one had
    # just sent, sends it again under the same nonce: Discord gives back the same message.
    client = bot.adapter.client
    assert client is not None
    channel = client.get_channel(GENERAL)
    assert isinstance(channel, discord.TextChannel)
    window = CallWindow(50, 1.0, MonotonicClock())
    first = StreamingReply(ChannelReply(channel), window, MonotonicClock())
    first.identify("reply-1")
    await first.append("the answer, cut")
    await first.finish()
    taken_over = StreamingReply(ChannelReply(channel), window, MonotonicClock())
    taken_over.identify("reply-1")
    await taken_over.append("the answer, whole")
    await taken_over.finish()
    assert fake.texts(GENERAL) == ["the answer, whole"]
    other = StreamingReply(ChannelReply(channel), window, MonotonicClock())
    other.identify("reply-2")
    await other.append("another reply")
    await other.finish()
    assert fake.texts(GENERAL) == ["the answer, whole", "another reply"]
