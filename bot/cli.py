"""`python -m bot`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pydantic import ValidationError

from bot.app import App
from bot.config import ENV_PREFIXES, Settings
from bot.docs.cli import add_docs_parser, run_docs
from bot.platforms.runner import PLATFORMS, serve
from bot.platforms.terminal import TerminalChat
from inference.errors import InferenceError
from storage.errors import StorageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="A self-hosted LLM chat bot. Configuration comes from BOT_* environment "
        "variables or .env; with none set, everything runs embedded on this machine.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    chat = commands.add_parser(
        "chat",
        help="chat in the terminal (reads one message from stdin when it is not a terminal)",
    )
    chat.add_argument(
        "--conversation", default="default", help="conversation name (default: 'default')"
    )
    commands.add_parser(
        "serve", help="run the Discord and Telegram adapters whose tokens are configured"
    )
    commands.add_parser("telegram", help="serve Telegram alone (needs BOT_TELEGRAM_TOKEN)")
    commands.add_parser("discord", help="serve Discord alone (needs BOT_DISCORD_TOKEN)")
    add_docs_parser(commands)
    return parser


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        prefix = ENV_PREFIXES.get(exc.title, "BOT_")
        problems = "; ".join(
            f"{prefix}{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise SystemExit(f"configuration error: {problems}") from None


async def run_chat(settings: Settings, conversation: str) -> int:
    interactive = sys.stdin.isatty()
    # Read piped input before starting anything, so an empty pipe fails fast.
    piped = "" if interactive else sys.stdin.read()
    async with App(settings) as app:
        chat = TerminalChat(app.chat, conversation, app.commands)
        if interactive:
            return await chat.run_interactive()
        return await chat.run_once(piped)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command in ("serve", *PLATFORMS):
            wanted = PLATFORMS if args.command == "serve" else (args.command,)
            return asyncio.run(serve(settings, wanted))
        if args.command == "docs":
            return asyncio.run(run_docs(settings, args))
        return asyncio.run(run_chat(settings, args.conversation))
    except (StorageError, InferenceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
