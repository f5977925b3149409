"""The bot's slash commands: one `app_commands` tree whose commands only translate their
options into the text `bot.commands.CommandHandler` understands ("/settings set KEY
VALUE --level L") and hand it to the adapter.

Discord's `default_permissions` applies to a whole top-level command, never to one
subcommand, so it hides only `/stats` (admins only). `/docs` and `/settings` mix
everyone's subcommands with admins' ones: those stay visible, and the role check in the
core (`Scope.role`, decided by the adapter) refuses them with a clear message.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import discord
from discord import app_commands

from bot.chat_settings import SETTING_SPECS

Level = Literal["conversation", "channel", "server", "global"]
LEVEL_HELP = "where: conversation (default), channel, server (admins) or global (operators)"


class CommandRunner(Protocol):
    """What the commands call; each first defers the interaction."""

    async def ask(self, interaction: discord.Interaction[Any], question: str) -> None: ...

    async def command(self, interaction: discord.Interaction[Any], text: str) -> None: ...

    async def upload(
        self, interaction: discord.Interaction[Any], attachment: discord.Attachment
    ) -> None: ...


def setting_text(action: str, key: str | None, value: str | None, level: str) -> str:
    parts = ["/settings", action, *(part for part in (key, value) if part)]
    return " ".join(parts) + f" --level {level}"


async def _setting_keys(
    _interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    typed = current.strip().lower()
    return [
        # The choice's name shows each key's allowed values as people pick one.
        app_commands.Choice(name=f"{name}: {spec.allowed()}"[:100], value=name)
        for name, spec in SETTING_SPECS.items()
        if typed in name
    ][:25]


def build_tree(client: discord.Client, runner: CommandRunner) -> app_commands.CommandTree[Any]:
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)

    @tree.command(name="ask", description="Ask the bot a question")
    @app_commands.describe(question="what you want to know")
    async def ask(interaction: discord.Interaction[Any], question: str) -> None:
        await runner.ask(interaction, question)

    @tree.command(name="reset", description="Forget this conversation")
    async def reset(interaction: discord.Interaction[Any]) -> None:
        await runner.command(interaction, "/reset")

    @tree.command(name="cancel", description="Stop the answer being written here")
    async def cancel(interaction: discord.Interaction[Any]) -> None:
        await runner.command(interaction, "/cancel")

    @tree.command(name="help", description="What the bot can do")
    async def help_(interaction: discord.Interaction[Any]) -> None:
        await runner.command(interaction, "/help")

    @tree.command(name="stats", description="Queue depth, workers, tokens/s (admins)")
    @app_commands.default_permissions(manage_guild=True)
    async def stats(interaction: discord.Interaction[Any]) -> None:
        await runner.command(interaction, "/stats")

    tree.add_command(_docs_group(runner))
    tree.add_command(_settings_group(runner))
    return tree


def _docs_group(runner: CommandRunner) -> app_commands.Group:
    docs = app_commands.Group(name="docs", description="This community's documents")

    @docs.command(name="list", description="The documents here")
    async def list_(interaction: discord.Interaction[Any]) -> None:
        await runner.command(interaction, "/docs list")

    @docs.command(name="ask", description="Ask the documents; the answer cites them")
    @app_commands.describe(question="what you want to know")
    async def ask(interaction: discord.Interaction[Any], question: str) -> None:
        await runner.command(interaction, f"/docs ask {question}")

    @docs.command(name="add", description="Add a file or a web page (admins)")
    @app_commands.describe(file="a text, Markdown, HTML or PDF file", url="a web page")
    async def add(
        interaction: discord.Interaction[Any],
        file: discord.Attachment | None = None,
        url: str | None = None,
    ) -> None:
        if file is not None:
            await runner.upload(interaction, file)
        else:
            # Without a URL the core answers with the usage line.
            await runner.command(interaction, f"/docs add {url or ''}".strip())

    @docs.command(name="remove", description="Remove a document (admins)")
    @app_commands.describe(document="its number in /docs list")
    async def remove(interaction: discord.Interaction[Any], document: int) -> None:
        await runner.command(interaction, f"/docs remove {document}")

    @docs.command(name="summarize", description="Summarize a document")
    @app_commands.describe(document="its number in /docs list")
    async def summarize(interaction: discord.Interaction[Any], document: int) -> None:
        await runner.command(interaction, f"/docs summarize {document}")

    return docs


def _settings_group(runner: CommandRunner) -> app_commands.Group:
    settings = app_commands.Group(name="settings", description="How the bot samples here")

    @settings.command(name="show", description="The settings in effect here, and where from")
    async def show(interaction: discord.Interaction[Any]) -> None:
        await runner.command(interaction, "/settings show")

    @settings.command(name="set", description="Change a setting")
    @app_commands.describe(
        key="the setting (each shows its allowed values)",
        value="the new value, within the setting's allowed range",
        level=LEVEL_HELP,
    )
    @app_commands.autocomplete(key=_setting_keys)
    async def set_(
        interaction: discord.Interaction[Any],
        key: str,
        value: str,
        level: Level = "conversation",
    ) -> None:
        await runner.command(interaction, setting_text("set", key, value, level))

    @settings.command(name="reset", description="Go back to the inherited value")
    @app_commands.describe(key="one setting; all of them when left out", level=LEVEL_HELP)
    @app_commands.autocomplete(key=_setting_keys)
    async def reset(
        interaction: discord.Interaction[Any],
        key: str | None = None,
        level: Level = "conversation",
    ) -> None:
        await runner.command(interaction, setting_text("reset", key, None, level))

    return settings
