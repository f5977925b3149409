"""The runner behind `python -m bot serve`: adapters share the core and stop gracefully."""

from __future__ import annotations

import asyncio

import pytest

from bot.config import Settings
from bot.platforms.base import BotCore, PlatformAdapter
from bot.platforms.runner import configured_platforms, run_adapters, serve
from bot.scope import Scope
from tests.fakes import RecordingSink, ScriptedChatModel


class OneReplyAdapter(PlatformAdapter):
    """Starts one long reply as soon as it runs, and waits for it before returning."""

    name = "test"

    def __init__(self, core: BotCore) -> None:
        self.core = core
        self.sink = RecordingSink()

    async def run(self, stopping: asyncio.Event) -> None:
        scope = Scope("test", "server", "channel", "user")
        reply = asyncio.create_task(self.core.chat.chat(scope, "write a lot", self.sink))
        await stopping.wait()
        await asyncio.wait_for(reply, timeout=10)


class BrokenAdapter(PlatformAdapter):
    name = "broken"

    async def run(self, stopping: asyncio.Event) -> None:
        raise ConnectionError("the platform refused the token")


async def test_stopping_ends_replies_in_flight_with_a_note(
    core: BotCore, model: ScriptedChatModel
) -> None:
    model.token_delay_s = 0.05
    model.enqueue(" ".join(f"word{i}" for i in range(300)))
    adapter = OneReplyAdapter(core)
    stopping = asyncio.Event()
    runner = asyncio.create_task(run_adapters([adapter], core, stopping))
    await asyncio.wait_for(adapter.sink.first_text.wait(), timeout=10)
    stopping.set()  # what SIGTERM does
    assert await asyncio.wait_for(runner, timeout=15) == 0
    assert adapter.sink.finish_note is not None and "restarting" in adapter.sink.finish_note
    assert 0 < len(adapter.sink.text.split()) < 300


async def test_a_failing_adapter_stops_the_others_and_fails_the_run(
    core: BotCore, model: ScriptedChatModel
) -> None:
    model.token_delay_s = 0.05
    model.enqueue(" ".join(f"word{i}" for i in range(300)))
    healthy = OneReplyAdapter(core)
    stopping = asyncio.Event()
    assert await run_adapters([healthy, BrokenAdapter()], core, stopping) == 1
    assert stopping.is_set()
    # Stopping began before the reply got going: it ends at once, saying why.
    events = healthy.sink.events
    assert events[-1][0] in ("finish", "fail") and "restarting" in events[-1][1]
    assert len(healthy.sink.text.split()) < 300


async def test_serve_needs_a_token(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    for name in ("BOT_TELEGRAM_TOKEN", "BOT_DISCORD_TOKEN"):
        monkeypatch.setenv(name, "")  # docker-compose passes unset variables as empty
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert configured_platforms(settings) == []
    assert await serve(settings, ("telegram",)) == 2
    assert "set BOT_TELEGRAM_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("BOT_DISCORD_TOKEN", "x")
    assert configured_platforms(Settings(_env_file=None)) == ["discord"]  # type: ignore[call-arg]
