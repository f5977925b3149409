"""`VoiceReplies` in the core: the checks before download, the quotas counted once, and
how what was heard opens the reply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent
from bot.chat_service import ChatService, ServiceLimits
from bot.chat_settings import ChatSettings
from bot.config import SamplingDefaults
from bot.errors import SettingError
from bot.requests import Upload, VoiceMessage
from bot.scope import Scope, SettingLevel
from bot.speech.config import SpeechSettings
from bot.speech.replies import VoiceReplies, heard_quote
from bot.speech.service import SpeechToText, Transcript
from tests.fakes import RecordingSink, ScriptedChatModel

ANN = Scope(platform="telegram", server_id="42", channel_id="42", user_id="ann")


@pytest.fixture
async def chat(redis_client: aioredis.Redis, redis_url: str) -> AsyncIterator[ChatService]:
    raw = aioredis.from_url(redis_url, decode_responses=False)
    yield ChatService.on_redis(
        Agent(ScriptedChatModel(), AsyncRedisSaver(client=raw)),
        redis_client,
        ServiceLimits(user_requests_per_minute=2),
        ChatSettings.from_defaults(SamplingDefaults(burst_window_s=0)),
    )
    await raw.aclose()


class Clip:
    """A clip whose downloads are counted."""

    def __init__(self, data: bytes, *, size: int | None = None, seconds: float | None = None):
        self.data = data
        self.downloads = 0
        self.upload = Upload(
            "voice.ogg",
            len(data) if size is None else size,
            "audio/ogg",
            self.download,
            download_limit_bytes=20 * 1024 * 1024,
            duration_s=seconds,
        )

    async def download(self) -> bytes:
        self.downloads += 1
        return self.data


async def answer(voice: VoiceReplies, clip: Clip) -> list[tuple[str, str]]:
    sink = RecordingSink()
    await voice.answer(VoiceMessage(ANN, clip.upload), sink)
    return sink.events


async def test_a_voice_message_counts_once_against_the_quota_before_download(
    chat: ChatService, tmp_path: Path
) -> None:
    async with SpeechToText(SpeechSettings(), tmp_path) as speech:
        voice = VoiceReplies(chat, speech)
        empty = Clip(b"")
        for _ in range(2):
            events = await answer(voice, empty)
            assert events[-1] == ("fail", "The file is empty; record the voice message again.")
        refused = await answer(voice, empty)
        assert refused[-1][0] == "fail" and refused[-1][1].startswith("Slow down")
        assert empty.downloads == 2
        assert await answer(voice, empty) == []  # told once per burst


async def test_refused_before_download(chat: ChatService, tmp_path: Path) -> None:
    settings = SpeechSettings(max_seconds=60, max_mb=1)
    async with SpeechToText(settings, tmp_path) as speech:
        voice = VoiceReplies(chat, speech)
        for clip, line in [
            (Clip(b"x", seconds=61.5), "The clip is 1 min 2 s long; voice messages of at most"),
            (Clip(b"x", size=3 * 1024 * 1024), "The file is 3.0 MB; voice messages and audio"),
        ]:
            events = await answer(voice, clip)
            assert events[-1][0] == "fail" and events[-1][1].startswith(line)
            assert clip.downloads == 0
        off = VoiceReplies(chat, None)
        events = await answer(off, Clip(b"x"))
        assert events == [("fail", "Voice messages are not transcribed on this bot; send text.")]


async def test_the_voice_setting_and_a_bad_language(
    chat: ChatService, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    async with SpeechToText(SpeechSettings(), tmp_path) as speech:
        voice = VoiceReplies(chat, speech)
        await chat.settings.set(ANN, "voice", "off", SettingLevel.CONVERSATION)
        clip = Clip(b"x")
        events = await answer(voice, clip)
        assert events[-1][1].startswith("Voice messages are not transcribed here")
        assert clip.downloads == 0
        await chat.settings.set(ANN, "voice", "ON", SettingLevel.CONVERSATION)
        with pytest.raises(SettingError, match="voice_language must be one of: auto, af"):
            await chat.settings.set(ANN, "voice_language", "klingon", SettingLevel.CONVERSATION)
        await chat.settings.set(ANN, "voice_language", "es", SettingLevel.CONVERSATION)
        assert (await chat.settings.resolve(ANN)).voice_language == "es"


def test_what_was_heard_opens_the_reply_short() -> None:
    heard = Transcript("  what is\nthe capital of France? ", "en", 2.0, 1.0)
    assert heard_quote(heard) == "> 🎤 what is the capital of France?\n\n"
    long = Transcript("word " * 100, "en", 60.0, 9.0)
    quote = heard_quote(long)
    assert len(quote) <= 200 + len("> 🎤 \n\n") and quote.endswith("…\n\n")
