"""Commands: declared once in the registry, run by the handler."""

from bot.commands.handler import CommandHandler
from bot.commands.registry import COMMANDS, REGISTRY, Arg, CommandRegistry, CommandSpec


def is_command(text: str) -> bool:
    return text.lstrip().startswith("/")


__all__ = [
    "COMMANDS",
    "REGISTRY",
    "Arg",
    "CommandHandler",
    "CommandRegistry",
    "CommandSpec",
    "is_command",
]
