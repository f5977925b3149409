"""The one entry every platform calls: a neutral request in, a reply in the sink.

Adapters translate their events into `bot.requests` and call `BotCore.handle`; the
choice between a chat message, a command and an upload is made here, once, not in each
adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.chat_service import ChatService
from bot.commands import CommandHandler, is_command
from bot.coordination import Coordination
from bot.docs.service import DocsService
from bot.docs.uploads import add_upload
from bot.reply_sink import ReplySink
from bot.requests import ChatMessage, CommandCall, Quoted, Request, UploadRequest, VoiceMessage
from bot.scope import Scope
from bot.speech.replies import VoiceReplies


@dataclass(frozen=True)
class BotCore:
    """What every platform adapter talks to: the platform-neutral core of the bot."""

    chat: ChatService
    commands: CommandHandler
    docs: DocsService | None = None
    voice: VoiceReplies | None = None
    # Shared state for several bot processes serving one bot (claims, pacing, roles);
    # None: this process serves alone.
    coordination: Coordination | None = None

    async def handle(self, request: Request, sink: ReplySink) -> None:
        if isinstance(request, ChatMessage):
            await self.chat.chat(request.scope, request.text, sink, request.quoted)
        elif isinstance(request, CommandCall):
            await self.commands.run(request, sink)
        elif isinstance(request, VoiceMessage):
            await (self.voice or VoiceReplies(self.chat, None)).answer(request, sink)
        else:
            await add_upload(self.docs, request.scope, request.upload, sink)

    async def handle_text(
        self, scope: Scope, text: str, sink: ReplySink, quoted: Quoted | None = None
    ) -> None:
        """Typed text: a command when it starts with "/" (parsed once by the registry),
        else a chat message."""
        if is_command(text):
            await self.commands.handle(scope, text, sink)
        else:
            await self.handle(ChatMessage(scope, text, quoted), sink)


__all__ = ["BotCore", "UploadRequest"]
