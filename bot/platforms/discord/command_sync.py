"""Registering the slash commands with Discord: once per change, by one process.

`tree.sync` replaces the bot's whole command list, and Discord allows few such calls a
day (200 per scope). When several processes serve the bot, each would register the same
list at every start. So with shared Redis (`Coordination`) the registering is a role one
process holds at a time, and the holder registers only when the list differs from the
one registered last (a digest of the payload, kept a day so that a list changed in the
developer portal by hand is put right by the next start after that). A process that
finds the role taken waits for it, then sees the list registered already.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

import discord
from redis.exceptions import RedisError

from bot.coordination import Coordination

log = logging.getLogger(__name__)

# How long a registered list is trusted to still be Discord's.
REGISTERED_TTL_S = 24 * 3600


def commands_digest(
    tree: discord.app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None
) -> str:
    """A digest of what `tree.sync(guild=guild)` would send."""
    payload = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
    encoded = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()


async def _register(
    tree: discord.app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None
) -> int:
    return len(await tree.sync(guild=guild))


async def sync_commands(
    tree: discord.app_commands.CommandTree[Any],
    guild_id: int | None,
    coordination: Coordination | None,
    app_id: int,
    stopping: asyncio.Event,
) -> int | None:
    """Register the tree (in `guild_id` only, when set); the number of commands
    registered, or None when the registered list was current already."""
    guild = discord.Object(id=guild_id) if guild_id is not None else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    if coordination is None:  # one process alone: as at every start before
        return await _register(tree, guild)
    where = "global" if guild_id is None else str(guild_id)
    key = f"discord:{app_id}:slash-sync:{where}"
    digest = commands_digest(tree, guild)
    try:
        async with coordination.role(f"discord:{app_id}:slash-sync").held(stopping):
            if stopping.is_set():
                return None
            registered = await coordination.redis.get(key)
            if isinstance(registered, bytes):
                registered = registered.decode()
            if registered == digest:
                log.info("the slash commands are registered already; not again")
                return None
            count = await _register(tree, guild)
            await coordination.redis.set(key, digest, ex=REGISTERED_TTL_S)
            return count
    except (RedisError, OSError) as exc:
        # Registering twice costs one call of Discord's daily allowance; not registering
        # leaves commands missing or stale.
        log.warning("could not coordinate registering the slash commands (%s); registering", exc)
        return await _register(tree, guild)


async def register_commands(
    tree: discord.app_commands.CommandTree[Any],
    guild_id: int | None,
    coordination: Coordination | None,
    app_id: int,
    stopping: asyncio.Event,
) -> None:
    """`sync_commands`, run as a task of its own beside the gateway: a failure is logged
    (the bot serves messages without its slash commands), never raised."""
    try:
        synced = await sync_commands(tree, guild_id, coordination, app_id, stopping)
    except discord.HTTPException as exc:
        log.warning(
            "could not register the slash commands (%s); invite the bot with the "
            "'applications.commands' scope",
            exc,
        )
        return
    except Exception:  # a task of its own: its failure would otherwise go unseen
        log.exception("registering the slash commands failed")
        return
    if synced is not None:
        log.info("registered %d slash commands", synced)
