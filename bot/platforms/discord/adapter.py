"""The Discord adapter: gateway events and slash commands in, streamed replies out.

It only translates. A message addressed to the bot (`routing.is_addressed`) becomes a
neutral request (a chat message with the message it replies to, a command parsed once by
the registry, an upload, a voice message or audio file to transcribe and answer); a slash
command's typed options become a `CommandCall` as they are (`slash`); each reply is a
`StreamingReply` over a Discord transport (`transport`), paced by one `Pacer` shared by
every reply of this adapter. Registering the slash commands (`command_sync`) and pausing
windows on a 429 (`rate_limits`) are done beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from typing import Any

import discord
from discord.webhook.async_ import async_context

from bot.coordination import handle_once, pacers, track_reply
from bot.delivery import Clock, StreamingReply, Transport
from bot.platforms.base import BotCore, InFlight, PlatformAdapter
from bot.platforms.discord.attachments import clip_in, upload_of
from bot.platforms.discord.client import DiscordClient, use_api_base
from bot.platforms.discord.command_sync import register_commands
from bot.platforms.discord.config import DiscordSettings
from bot.platforms.discord.rate_limits import RateLimitPauses
from bot.platforms.discord.routing import (
    channel_allowed,
    destination_key,
    is_addressed,
    quoted_in,
    replied_to,
    role_of,
    scope_for,
    strip_mentions,
)
from bot.platforms.discord.shards import SharedIdentifyTurns
from bot.platforms.discord.slash import build_tree
from bot.platforms.discord.transport import (
    BOT_REQUESTS_PER_S,
    DISCORD_LIMITS,
    ChannelReply,
    InteractionReply,
)
from bot.requests import CommandCall, UploadRequest, VoiceMessage
from storage.identify_gate import IDENTIFY_WINDOW_S

log = logging.getLogger(__name__)

NO_CONTENT_NOTE = (
    "The Message Content intent is off (BOT_DISCORD_MESSAGE_CONTENT=false): the bot answers "
    "mentions, DMs, replies to its messages and slash commands; it cannot read other messages."
)


def bot_key(token: str) -> str:
    """A short, stable name for the bot a token belongs to, that reveals nothing of it."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _is_docs_add(text: str) -> bool:
    words = text.lower().split()
    return words == ["/docs", "add"]


class DiscordAdapter(PlatformAdapter):
    name = "discord"

    def __init__(
        self,
        core: BotCore,
        settings: DiscordSettings,
        clock: Clock | None = None,
        identify_window_s: float = IDENTIFY_WINDOW_S,
    ) -> None:
        self._core = core
        self._settings = settings
        self._identify_window_s = identify_window_s  # Discord's 5 s; tests shorten it
        # Names this bot's shared state (claims, windows) without the token itself.
        self._bot_key = bot_key(settings.token.get_secret_value()) if settings.token else "none"
        self._pacer = pacers(
            core.coordination,
            f"discord:{self._bot_key}",
            clock,
            BOT_REQUESTS_PER_S,
            {"channel": (DISCORD_LIMITS.channel_messages, DISCORD_LIMITS.channel_window_s)},
        )["channel"]
        self.in_flight = InFlight()
        self._accepting = False
        self._rate_limits = RateLimitPauses(self._pacer)
        self.client: DiscordClient | None = None
        self.ready = asyncio.Event()  # set once connected (READY and the servers received)
        # Set once the slash commands are registered, or found registered, or failed to be.
        self.commands_checked = asyncio.Event()

    @property
    def rate_limits_seen(self) -> int:
        """How many 429s Discord answered this adapter's calls with."""
        return self._rate_limits.seen

    def intents(self) -> discord.Intents:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.dm_messages = True
        intents.message_content = self._settings.message_content
        return intents

    # -- lifecycle -----------------------------------------------------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        token = self._settings.token
        if token is None:
            raise ValueError(
                "BOT_DISCORD_TOKEN is not set: create a bot in the Discord developer portal "
                "(Applications > your app > Bot > Reset Token)"
            )
        if not self._settings.message_content:
            log.warning(NO_CONTENT_NOTE)
        client = DiscordClient(
            api_base=self._settings.api_url,
            intents=self.intents(),
            on_message_cb=self._on_message,
            rate_limited=self._rate_limits.rate_limited,
            shard_ids=self._settings.shard_ids,
            shard_count=self._settings.shard_count,
        )
        self.client = client
        tree = build_tree(client, self)
        webhooks = use_api_base(client.http)
        try:
            async with client:
                await client.login(token.get_secret_value())
                await client.http.fetch_gateway()
                self._share_identify_turns(client)
                await self._serve(client, tree, stopping)
        except discord.LoginFailure as exc:
            raise ValueError(
                "Discord refused BOT_DISCORD_TOKEN: copy the bot's current token from the "
                "developer portal (Applications > your app > Bot)"
            ) from exc
        except discord.PrivilegedIntentsRequired as exc:
            raise ValueError(
                "Discord refused the Message Content intent: enable it in the developer portal "
                "(Applications > your app > Bot > Privileged Gateway Intents), or set "
                "BOT_DISCORD_MESSAGE_CONTENT=false to answer mentions, DMs and slash commands only"
            ) from exc
        finally:
            async_context.reset(webhooks)

    async def _serve(
        self,
        client: DiscordClient,
        tree: discord.app_commands.CommandTree[Any],
        stopping: asyncio.Event,
    ) -> None:
        self._accepting = True
        connection = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
        # Beside the gateway, not before it: registering may wait for another process
        # registering, and the shards this process serves must not wait with it.
        sync = asyncio.create_task(self._sync_commands(tree, client, stopping))
        stop = asyncio.create_task(stopping.wait())
        ready = asyncio.create_task(self._mark_ready(client))
        recovering = self._recover(stopping)
        try:
            await asyncio.wait([connection, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._accepting = False
            for task in (stop, ready, sync, *recovering):
                task.cancel()
            await asyncio.gather(sync, return_exceptions=True)
            await self.in_flight.finish(self._settings.shutdown_grace_s)
            await client.close()
            with contextlib.suppress(asyncio.CancelledError):
                await connection  # re-raises a failure that ended the connection
        if not stopping.is_set():
            raise RuntimeError("the Discord gateway connection ended")

    async def _mark_ready(self, client: DiscordClient) -> None:
        await client.wait_until_ready()
        self.ready.set()
        log.info("connected to Discord as %s", client.user)

    def _share_identify_turns(self, client: DiscordClient) -> None:
        """With other processes possibly serving other shards of the bot, start sessions
        in turns taken in Redis; alone, discord.py's own pacing is enough."""
        coordination = self._core.coordination
        if coordination is None or client.application_id is None:
            return
        client.identify_turns = SharedIdentifyTurns(
            coordination.redis,
            client.application_id,
            client.http.max_concurrency,
            self._identify_window_s,
        )

    async def _sync_commands(
        self,
        tree: discord.app_commands.CommandTree[Any],
        client: DiscordClient,
        stopping: asyncio.Event,
    ) -> None:
        try:
            await register_commands(
                tree,
                self._settings.guild_id,
                self._core.coordination,
                client.application_id or 0,
                stopping,
            )
        finally:
            self.commands_checked.set()

    def _reply(self, transport: Transport[discord.Message], channel_id: int) -> StreamingReply[Any]:
        window = self._pacer.window(destination_key(channel_id))
        return StreamingReply(transport, window, self._pacer.clock)

    # -- messages ------------------------------------------------------------------------
    async def _on_message(self, message: discord.Message) -> None:
        client = self.client
        me = client.user if client is not None else None
        if not self._accepting or me is None:
            return
        if not is_addressed(message, me) or not channel_allowed(message.channel, self._settings):
            return
        # Its own task: the gateway keeps reading while the reply streams.
        self.in_flight.spawn(self._answer(message, me))

    @property
    def _messages_source(self) -> str:
        return f"discord:{self._bot_key}:message"

    async def _answer(self, message: discord.Message, me: discord.ClientUser) -> None:
        # Where to find the message again: another process takes it over from this when
        # this one dies before answering (Discord does not send it again by itself).
        payload = json.dumps({"channel": message.channel.id, "message": message.id})
        source = self._messages_source
        async with handle_once(self._core.coordination, source, message.id, payload) as mine:
            if mine:
                await self._answer_once(message, me)

    def _recover(self, stopping: asyncio.Event) -> list[asyncio.Task[None]]:
        """Every process, whatever its shards, answers the messages whose process died
        before answering them (or stopped: a restart's questions are answered again)."""
        coordination = self._core.coordination
        if coordination is None:
            return []
        recover = coordination.recover(
            self._messages_source,
            self._answer_payload,
            self.in_flight.spawn,
            stopping,
            lane_of=lambda payload: str(json.loads(payload)["channel"]),
        )
        return [asyncio.create_task(recover, name="discord-recover")]

    async def _answer_payload(self, payload: str) -> None:
        """Answer a message taken over from another process: fetched again by its ids
        (this process may not serve the shard it came on)."""
        await self.ready.wait()  # the client knows who it is, and can fetch
        client = self.client
        if client is None or client.user is None:
            return
        ids = json.loads(payload)
        try:
            channel = client.get_channel(ids["channel"]) or await client.fetch_channel(
                ids["channel"]
            )
            if not isinstance(channel, discord.abc.Messageable):
                return
            message = await channel.fetch_message(ids["message"])
        except discord.NotFound:
            log.info("a message taken over was deleted meanwhile; not answering it")
            return
        await self._answer_once(message, client.user)

    async def _answer_once(self, message: discord.Message, me: discord.ClientUser) -> None:
        text = strip_mentions(message.content, me)
        scope = scope_for(
            message.author,
            message.channel,
            message.channel.id,
            message.guild.id if message.guild else None,
            role_of(message.author, self._settings),
        )
        # A reply another process left cut is finished, or marked and answered again.
        sink = await track_reply(
            self._reply(ChannelReply(message.channel, reply_to=message), message.channel.id)
        )
        if sink is None:
            return
        try:
            clip = clip_in(message)
            if message.attachments and _is_docs_add(text):
                # "@bot /docs add" with a file attached: the same as the slash command's file.
                upload = upload_of(message.attachments[0])
                await self._core.handle(UploadRequest(scope, upload), sink)
            elif text.lower() == "/transcribe":
                # "@bot /transcribe" with a clip, or in reply to one.
                clip = clip or clip_in(replied_to(message))
                args = {} if clip is None else {"clip": upload_of(clip)}
                await self._core.handle(CommandCall(scope, "transcribe", args), sink)
            elif clip is not None and not text.startswith("/"):
                quoted = quoted_in(message, me)
                voice = VoiceMessage(scope, upload_of(clip), quoted, caption=text)
                await self._core.handle(voice, sink)
            else:
                await self._core.handle_text(scope, text, sink, quoted_in(message, me))
        except Exception:  # the core reports failures itself; never lose the gateway task
            log.exception("answering a message in %s failed", scope.conversation_key)

    # -- slash commands (slash.CommandRunner) ----------------------------------------------
    async def command(
        self, interaction: discord.Interaction[Any], name: str, options: dict[str, Any]
    ) -> None:
        source = f"discord:{self._bot_key}:interaction"
        async with handle_once(self._core.coordination, source, interaction.id) as mine:
            if mine:
                await self._command(interaction, name, options)

    async def _command(
        self, interaction: discord.Interaction[Any], name: str, options: dict[str, Any]
    ) -> None:
        refusal = None
        if not self._accepting:
            refusal = "The bot is restarting; try again in a minute."
        elif not channel_allowed(interaction.channel, self._settings):
            refusal = "I don't answer in this channel."
        try:
            if refusal is not None:
                await interaction.response.send_message(
                    refusal, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
                )
                return
            # At once: Discord drops an interaction not answered within 3 s.
            await interaction.response.defer(thinking=True)
        except discord.HTTPException as exc:  # expired meanwhile, or Discord is down
            log.warning("could not answer a slash command: %s", exc)
            return
        # discord.py runs each command in its own task; stopping waits for it.
        with self.in_flight.current():
            await self._answer_interaction(interaction, name, options)

    async def _answer_interaction(
        self, interaction: discord.Interaction[Any], name: str, options: dict[str, Any]
    ) -> None:
        user = interaction.user
        permissions = interaction.permissions if interaction.guild_id is not None else None
        scope = scope_for(
            user,
            interaction.channel,
            interaction.channel_id or 0,
            interaction.guild_id,
            role_of(user, self._settings, permissions),
        )
        typed = {
            key: upload_of(value) if isinstance(value, discord.Attachment) else value
            for key, value in options.items()
        }
        channel_id = interaction.channel_id or 0
        with self._rate_limits.interaction(interaction.token, channel_id):
            try:
                sink = self._reply(InteractionReply(interaction), channel_id)
                await self._core.handle(CommandCall(scope, name, typed), sink)
            except Exception:
                log.exception("a slash command in %s failed", scope.conversation_key)
