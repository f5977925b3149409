"""The runner behind `python -m bot serve`: adapters share the core and stop gracefully."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import urllib.request
from pathlib import Path

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
    assert await serve(settings, ("telegram",)) == 2  # asked for by name: an error
    assert "set BOT_TELEGRAM_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("BOT_DISCORD_TOKEN", "x")
    assert configured_platforms(Settings(_env_file=None)) == ["discord"]  # type: ignore[call-arg]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


async def test_serve_without_tokens_waits_healthy_until_stopped(
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Under compose's restart policy an exit would restart it in a loop: it must stay up,
    # say once what is missing, answer its health check, and stop on SIGTERM.
    for name in ("BOT_TELEGRAM_TOKEN", "BOT_DISCORD_TOKEN"):
        monkeypatch.setenv(name, "")
    port = free_port()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        redis_url=redis_url,
        database_url=database_url,
        embedded_worker=False,
        data_dir=tmp_path,
        status_port=port,
    )
    caplog.set_level(logging.WARNING, logger="bot.platforms.runner")
    server = asyncio.create_task(serve(settings))
    health = ""
    for _ in range(300):
        await asyncio.sleep(0.1)
        assert not server.done(), "serve exited without a token"
        try:
            health = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/healthz")
            break
        except OSError:
            continue
    assert health == "ok\n"
    exposed = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
    assert "bot_documents " in exposed and "bot_replies_total" in exposed
    waiting = [r.getMessage() for r in caplog.records if "no platform token" in r.getMessage()]
    assert len(waiting) == 1 and "BOT_TELEGRAM_TOKEN or BOT_DISCORD_TOKEN" in waiting[0]
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(server, timeout=30) == 0
    with pytest.raises(OSError):
        await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/healthz")
