"""Voice messages in a chat, on any platform: transcribed on this host, then answered
like typed text.

A platform hands over what it knows of the clip before download (`Upload`: size, type,
announced length). The checks (the scope's `voice` setting, size, length, the quotas),
the order of the steps and what the person is told are the same everywhere. The reply
first shows what was heard, then the answer, which comes from the same chat path as a
typed message: agent, tools, memory, queue, budgets and permissions.
"""

from __future__ import annotations

from bot.chat_service import ChatService
from bot.failures import describe_failure
from bot.reply_sink import ReplySink
from bot.requests import Upload, VoiceMessage
from bot.scope import Scope
from bot.speech.audio import too_long
from bot.speech.errors import ClipTooLarge, SpeechUnavailable
from bot.speech.languages import parse_language
from bot.speech.service import SpeechToText, Transcript

# The status line's tool name while a clip is being transcribed (`status_line`).
TRANSCRIBE_STATUS = "transcribe"
# How much of what was heard the answer quotes before answering it.
HEARD_QUOTE_CHARS = 200
VOICE_OFF = "Voice messages are not transcribed here (the voice setting is off); send text."
NO_CLIP = "Reply /transcribe to a voice message, an audio file or a video note."


def heard_quote(heard: Transcript, limit: int = HEARD_QUOTE_CHARS) -> str:
    """What was heard, as a short quoted line that opens the reply."""
    text = " ".join(heard.text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return f"> 🎤 {text}\n\n"


class VoiceReplies:
    def __init__(self, chat: ChatService, speech: SpeechToText | None) -> None:
        self._chat = chat
        self._speech = speech

    async def answer(self, request: VoiceMessage, sink: ReplySink) -> None:
        """Transcribe the clip, show what was heard, and answer it like typed text."""
        heard = await self._transcribe(request.scope, request.clip, sink)
        if heard is None:
            return
        await sink.append(heard_quote(heard))
        question = f"{heard.text}\n\n{request.caption}" if request.caption else heard.text
        await self._chat.chat(request.scope, question, sink, request.quoted, admitted=True)

    async def transcribe_only(self, scope: Scope, clip: Upload | None, sink: ReplySink) -> None:
        """`/transcribe`: what the clip says, and nothing else."""
        if clip is None:
            await sink.fail(NO_CLIP)
            return
        heard = await self._transcribe(scope, clip, sink)
        if heard is None:
            return
        await sink.append(f"🎤 {heard.text}")
        await sink.finish(f"{heard.language}, {heard.audio_seconds:.0f} s")

    async def _transcribe(self, scope: Scope, clip: Upload, sink: ReplySink) -> Transcript | None:
        """What `clip` says, or None once the person has been told why not."""
        try:
            speech = self._check(clip)
            chat = await self._chat.settings.resolve(scope)
            if chat.voice != "on":
                raise SpeechUnavailable(VOICE_OFF)
            language = parse_language(chat.voice_language)
        except Exception as exc:
            await sink.fail(describe_failure(exc, f"checking a clip in {scope.conversation_key}"))
            return None
        if not await self._chat.admit(scope, sink):
            return None
        await sink.start()
        await sink.tool_status(TRANSCRIBE_STATUS, "the voice message")
        try:
            data = await clip.download()
            return await speech.transcribe(data, language)
        except Exception as exc:
            await sink.fail(describe_failure(exc, f"transcribing in {scope.conversation_key}"))
            return None

    def _check(self, clip: Upload) -> SpeechToText:
        """Refuse before download what is refused anyway: voice off, too large, too long."""
        speech = self._speech
        if speech is None or not speech.settings.enabled:
            raise SpeechUnavailable("Voice messages are not transcribed on this bot; send text.")
        speech.check_size(clip.size_bytes)
        cap, size = clip.download_limit_bytes, clip.size_bytes
        if cap is not None and size is not None and size > cap:
            raise ClipTooLarge(
                f"The file is {size / 1024 / 1024:.1f} MB; bots can download files of at most "
                f"{cap / 1024 / 1024:.0f} MB here."
            )
        limit = speech.settings.max_seconds
        if clip.duration_s is not None and clip.duration_s > limit + 1:
            raise too_long(clip.duration_s, limit)
        return speech
