"""`python -m bot serve | telegram | discord`: the platform adapters in one process.

All adapters share one `App` (one Redis, one database, one inference pool). SIGTERM or
SIGINT sets `stopping`: the adapters stop taking messages, every reply in flight ends
with a short note (so nothing half-written looks finished), and the process exits once
the adapters have delivered those endings or their grace time is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from bot.app import App
from bot.config import Settings
from bot.metrics import serve_status
from bot.platforms.base import BotCore, PlatformAdapter

log = logging.getLogger(__name__)

PLATFORMS = ("telegram", "discord")


def configured_platforms(settings: Settings, wanted: tuple[str, ...] = PLATFORMS) -> list[str]:
    """The platforms among `wanted` whose token is set (an empty value, as docker-compose
    passes an unset variable, counts as unset)."""
    tokens = {"telegram": settings.telegram.token, "discord": settings.discord.token}
    return [name for name in wanted if (token := tokens[name]) and token.get_secret_value()]


def build_adapter(name: str, core: BotCore, settings: Settings) -> PlatformAdapter:
    # Imported here: each library loads only when its platform is served.
    if name == "telegram":
        from bot.platforms.telegram.adapter import TelegramAdapter

        return TelegramAdapter(core, settings.telegram)
    if name == "discord":
        from bot.platforms.discord.adapter import DiscordAdapter

        return DiscordAdapter(core, settings.discord)
    raise ValueError(f"unknown platform {name!r}")


async def serve(settings: Settings, wanted: tuple[str, ...] = PLATFORMS) -> int:
    names = configured_platforms(settings, wanted)
    variables = " or ".join(f"BOT_{name.upper()}_TOKEN" for name in wanted)
    if not names and wanted != PLATFORMS:
        print(f"error: no platform token is set: set {variables}", file=sys.stderr)
        return 2
    async with App(settings) as app, serve_status(app, settings.status_port):
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        if not names:
            # `serve` under a supervisor (compose's restart policy): exiting would only
            # restart it in a loop, so it stays up, healthy, and says once what is missing.
            log.warning("no platform token is set (%s): serving no platform; waiting", variables)
            await stopping.wait()
            return 0
        adapters = [build_adapter(name, app.core, settings) for name in names]
        print(f"serving {', '.join(names)}; Ctrl-C or SIGTERM stops", file=sys.stderr)
        return await run_adapters(adapters, app.core, stopping)


async def run_adapters(
    adapters: list[PlatformAdapter], core: BotCore, stopping: asyncio.Event
) -> int:
    """Run `adapters` until `stopping` is set or one of them fails; 1 when one failed."""
    tasks = {asyncio.create_task(adapter.run(stopping), name=adapter.name) for adapter in adapters}
    stopper = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait({*tasks, stopper}, return_when=asyncio.FIRST_COMPLETED)
    failed = [task for task in done if task is not stopper and task.exception() is not None]
    for task in failed:
        log.error("the %s adapter stopped: %s", task.get_name(), task.exception())
        print(f"error: {task.get_name()}: {task.exception()}", file=sys.stderr)
    stopping.set()
    # Replies in flight end with a note; the adapters deliver it, then return.
    await core.chat.shutdown()
    await asyncio.gather(*tasks, return_exceptions=True)
    stopper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stopper
    return 1 if failed else 0
