"""Voice messages and audio attachments through the real discord.py client and the fake
Discord: transcribed by the real Whisper model, quoted, then answered like typed text."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bot.platforms.discord.conftest import Running
from tests.bot.platforms.discord.fake_discord import FakeDiscord
from tests.bot.platforms.discord.fake_world import ALICE, BOT_ID, DM_ALICE, GENERAL
from tests.bot.platforms.discord.test_slash import answer
from tests.bot.speech.samples import broken_ogg_header, spoken_clips
from tests.fakes import ScriptedChatModel

CLIPS = spoken_clips()


def voice_message(
    fake: FakeDiscord, name: str, data: bytes, seconds: float = 3.0
) -> dict[str, Any]:
    """A voice message's attachment: Discord sends its length and waveform with it."""
    attachment = fake.attachment(name, data, "audio/ogg")
    return {**attachment, "duration_secs": seconds, "waveform": "AAAA", "flags": 1 << 2}


def downloads(fake: FakeDiscord) -> list[str]:
    return [call.path for call in fake.calls if call.path.startswith("/attachments/")]


def final_text(fake: FakeDiscord, channel: int) -> str:
    return "\n".join(fake.texts(channel))


@pytest.mark.model
async def test_a_voice_message_in_a_dm_is_quoted_then_answered(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    model.enqueue("Paris is the capital of France.")
    clip = voice_message(fake, "voice-message.ogg", CLIPS["en_question"].data)
    await fake.message("", channel=DM_ALICE, dm=True, attachments=[clip])

    await fake.wait_for(lambda: "Paris is the capital" in final_text(fake, DM_ALICE), 120)
    await bot.settled()

    heard, answered = final_text(fake, DM_ALICE).split("\n\n", 1)
    assert heard.startswith("> 🎤") and "capital" in heard.lower()
    assert answered == "Paris is the capital of France."
    assert "capital" in model.calls[-1]["messages"][-1].content.lower()


@pytest.mark.model
async def test_in_a_server_only_clips_addressed_to_the_bot_are_answered(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    model.enqueue("Audio answer")
    talk = voice_message(fake, "among-us.ogg", CLIPS["en_fox"].data)
    await fake.message("", channel=GENERAL, attachments=[talk])
    song = fake.attachment("question.ogg", CLIPS["en_question"].data, "audio/ogg")
    await fake.message(f"<@{BOT_ID}>", mentions_bot=True, attachments=[song])

    await fake.wait_for(lambda: "Audio answer" in final_text(fake, GENERAL), 120)
    await bot.settled()

    assert downloads(fake) == ["/attachments/question.ogg"]
    assert "capital" in final_text(fake, GENERAL).lower()
    assert len(model.calls) == 1


async def test_a_voice_message_over_the_limit_is_refused_unfetched(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    clip = voice_message(fake, "long.ogg", CLIPS["en_fox"].data, seconds=3 * 3600)
    await fake.message("", channel=DM_ALICE, dm=True, attachments=[clip])

    await fake.wait_for(lambda: "⚠️" in final_text(fake, DM_ALICE))
    await bot.settled()

    assert final_text(fake, DM_ALICE).startswith("⚠️ The clip is 3 h 0 min long")
    assert downloads(fake) == [] and not model.calls


async def test_a_corrupted_voice_message_gets_one_line_and_the_bot_keeps_serving(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    clip = voice_message(fake, "broken.ogg", broken_ogg_header(CLIPS["en_fox"].data))
    await fake.message("", channel=DM_ALICE, dm=True, attachments=[clip])

    await fake.wait_for(lambda: "⚠️" in final_text(fake, DM_ALICE))
    await bot.settled()

    assert fake.texts(DM_ALICE) == [
        "⚠️ The audio file is damaged (its header cannot be read); record or export it again."
    ]
    model.enqueue("still here")
    await fake.message("hello", channel=DM_ALICE, dm=True)
    await fake.wait_for(lambda: "still here" in final_text(fake, DM_ALICE))


@pytest.mark.model
async def test_slash_transcribe_only_transcribes(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    clip = fake.attachment("nota.ogg", CLIPS["es_question"].data, "audio/ogg")
    token = await fake.slash(
        "transcribe",
        [{"name": "clip", "type": 11, "value": clip["id"]}],
        resolved={"attachments": {clip["id"]: clip}},
        author=ALICE,
    )

    shown = await answer(fake, bot, token)

    assert shown.startswith("🎤") and "francia" in shown.lower()
    assert not model.calls
