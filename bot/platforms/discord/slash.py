"""The bot's slash commands, built from the command registry: one `app_commands` tree
whose commands hand their typed options, as they are, to the adapter.

Each registry argument becomes a typed option (a whole number with its range, a choice,
a setting key with autocomplete, a file). Discord's `default_permissions` applies to a
whole top-level command, never to one subcommand, so it hides only top-level admin
commands such as `/stats`; `/docs` and `/settings` mix everyone's subcommands with
admins' ones: those stay visible, and the role check in the core refuses them with a
clear message.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal, Optional, Protocol

import discord
from discord import app_commands

from bot.chat_settings import SETTING_SPECS
from bot.commands.registry import REGISTRY, Arg, CommandRegistry, CommandSpec
from bot.scope import Role

PLATFORM = "discord"
# Discord's limits on names and descriptions of commands and options.
_DESCRIPTION_MAX = 100


class CommandRunner(Protocol):
    """What the commands call; it first defers the interaction."""

    async def command(
        self, interaction: discord.Interaction[Any], name: str, options: dict[str, Any]
    ) -> None: ...


async def setting_keys(
    _interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    typed = current.strip().lower()
    return [
        # The choice's name shows each key's allowed values as people pick one.
        app_commands.Choice(name=f"{name}: {spec.allowed()}"[:100], value=name)
        for name, spec in SETTING_SPECS.items()
        if typed in name
    ][:25]


def build_tree(
    client: discord.Client, runner: CommandRunner, registry: CommandRegistry = REGISTRY
) -> app_commands.CommandTree[Any]:
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)
    for top, specs in registry.top_level().items():
        offered = [spec for spec in specs if spec.offered_on(PLATFORM)]
        if not offered:
            continue
        if len(offered) == 1 and offered[0].path == (top,):
            tree.add_command(_command(offered[0], runner, None))
            continue
        names = ", ".join(spec.path[-1] for spec in offered)
        group = app_commands.Group(name=top, description=f"{top}: {names}"[:_DESCRIPTION_MAX])
        for spec in offered:
            group.add_command(_command(spec, runner, group))
        tree.add_command(group)
    return tree


def _command(
    spec: CommandSpec, runner: CommandRunner, parent: app_commands.Group | None
) -> app_commands.Command[Any, ..., None]:
    async def callback(interaction: discord.Interaction[Any], **options: Any) -> None:
        given = {name: value for name, value in options.items() if value is not None}
        await runner.command(interaction, spec.name, given)

    parameters = [
        inspect.Parameter(
            "interaction",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=discord.Interaction,
        )
    ]
    for arg in spec.args:
        annotation = _annotation(arg)
        parameters.append(
            inspect.Parameter(
                arg.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=annotation if arg.required else Optional[annotation],  # noqa: UP045
                default=inspect.Parameter.empty if arg.required else None,
            )
        )
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    described = app_commands.describe(
        **{arg.name: arg.help[:_DESCRIPTION_MAX] for arg in spec.args}
    )(callback)
    if any(arg.kind == "setting" for arg in spec.args):
        described = app_commands.autocomplete(
            **{arg.name: setting_keys for arg in spec.args if arg.kind == "setting"}
        )(described)
    command: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=spec.path[-1],
        description=spec.summary[:_DESCRIPTION_MAX],
        callback=described,
        parent=parent,
    )
    if parent is None and spec.role >= Role.ADMIN:
        command.default_permissions = discord.Permissions(manage_guild=True)
    return command


def _annotation(arg: Arg) -> Any:
    if arg.kind == "file":
        return discord.Attachment
    if arg.kind == "int":
        low = arg.minimum if arg.minimum is not None else -(2**53)
        high = arg.maximum if arg.maximum is not None else 2**53
        return app_commands.Range[int, low, high]
    if arg.kind == "choice":
        return Literal[arg.choices]  # type: ignore[valid-type]
    return str
