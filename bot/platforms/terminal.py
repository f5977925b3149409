"""The terminal: an interactive chat with streamed tokens, or one answer for piped input.

The local user runs the bot, so they are its operator: every command is open to them.
"""

from __future__ import annotations

import asyncio
import getpass
import signal
import sys
import threading
from typing import TextIO

from bot.chat_service import ChatService
from bot.commands import CommandHandler, is_command
from bot.reply_sink import ReplySink
from bot.scope import Role, Scope

PROMPT = "you> "


class TerminalSink(ReplySink):
    """Prints the reply as it streams; errors go to stderr."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self.failed = False
        self.text = ""
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._out.write("bot> ")
        self._out.flush()

    async def append(self, text: str) -> None:
        self.text += text
        self._out.write(text)
        self._out.flush()

    async def tool_status(self, name: str, detail: str) -> None:
        self._err.write(f"[{name}] {detail}\n")
        self._err.flush()

    async def finish(self, note: str = "") -> None:
        self._out.write(f" {note}\n" if note else "\n")
        self._out.flush()

    async def fail(self, message: str) -> None:
        self.failed = True
        self._out.write("\n" if self.text else "")
        self._out.flush()
        self._err.write(f"error: {message}\n")
        self._err.flush()


def terminal_scope(conversation: str) -> Scope:
    return Scope(
        platform="terminal",
        server_id="local",
        channel_id=conversation,
        user_id=getpass.getuser(),
        role=Role.OPERATOR,
        user_name=getpass.getuser(),
    )


class TerminalChat:
    def __init__(
        self,
        service: ChatService,
        conversation: str = "default",
        commands: CommandHandler | None = None,
    ) -> None:
        self._service = service
        self._commands = commands or CommandHandler(service)
        self._scope = terminal_scope(conversation)

    async def handle(self, text: str, out: TextIO, err: TextIO) -> bool:
        """Answer one message or command; True when it succeeded."""
        sink = TerminalSink(out, err)
        if is_command(text):
            await self._commands.handle(self._scope, text, sink)
        else:
            await self._service.chat(self._scope, text, sink)
        return not sink.failed

    async def run_once(self, text: str) -> int:
        """Piped input: the whole input is one message. Exit status 0 on an answer."""
        ok = await self.handle(text, sys.stdout, sys.stderr)
        return 0 if ok else 1

    async def run_interactive(self) -> int:
        """Read lines until EOF or /quit. Ctrl-C while an answer streams stops that answer;
        Ctrl-C at the prompt leaves."""
        print("Chatting with the local model. /help lists commands; /quit or Ctrl-D leaves.")
        loop = asyncio.get_running_loop()
        lines = _stdin_lines(loop)
        while True:
            print(PROMPT, end="", flush=True)
            line = await lines.get()
            if line is None or line.strip() in ("/quit", "/exit"):
                break
            if not line.strip():
                continue
            if is_command(line):
                await self.handle(line, sys.stdout, sys.stderr)
                continue
            loop.add_signal_handler(
                signal.SIGINT, lambda: loop.create_task(self._service.cancel(self._scope))
            )
            try:
                await self.handle(line, sys.stdout, sys.stderr)
            finally:
                loop.remove_signal_handler(signal.SIGINT)
        print()
        return 0


def _stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Lines of stdin, read by a daemon thread (it must not keep the process alive)."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n"))
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, name="stdin-reader", daemon=True).start()
    return queue
