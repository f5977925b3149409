"""The whole stack, wired by `App`, with the real model and real embedded services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent
from bot.app import App
from bot.config import Settings
from bot.scope import Role, Scope, SettingLevel
from bot.stats import BotStats
from inference.errors import ModelNotFound
from inference.llama_server import free_port
from storage.embedded_redis import EmbeddedRedis
from storage.errors import DataDirError, ServiceUnavailable
from tests.fakes import RecordingSink, ScriptedChatModel

ROOT = Path(__file__).resolve().parent.parent
LOCAL = Scope("terminal", "local", "default", "tester", role=Role.OPERATOR)


def settings_for(data_dir: Path, **values: object) -> Settings:
    # Explicit values: the test must not depend on the developer's environment or .env.
    return Settings.model_validate(
        {
            "data_dir": data_dir,
            "redis_url": None,
            "database_url": None,
            "model_path": None,
            "worker_slots": 1,
            "context_size": 1024,
            "web_search": False,  # tests never reach the internet
            **values,
        }
    )


@pytest.mark.model
async def test_a_message_gets_a_streamed_reply_that_survives_a_restart(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data")
    async with App(settings) as app:
        await app.chat.settings.set(LOCAL, "max_tokens", "24", SettingLevel.CONVERSATION)
        sink = RecordingSink()
        await app.chat.chat(LOCAL, "What is the capital of France?", sink)
        assert sink.failure is None
        assert sink.text.strip()
        assert len([kind for kind, _ in sink.events if kind == "append"]) > 1
        first_reply = sink.text
    # A new App on the same data directory is a restarted bot.
    async with App(settings) as app:
        history = await app.chat.agent.history(LOCAL.conversation_key)
        assert [message.text for message in history] == [
            "What is the capital of France?",
            first_reply,
        ]
        shown = {item.name: item.value for item in await app.chat.settings.show(LOCAL)}
        assert shown["max_tokens"] == 24


async def test_missing_model_file_names_the_setting(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data", model_path=tmp_path / "missing.gguf")
    with pytest.raises(ModelNotFound, match="BOT_MODEL_PATH"):
        async with App(settings):
            pass


async def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"not a model")
    with pytest.raises(ModelNotFound, match="not a GGUF"):
        async with App(settings_for(tmp_path / "data", model_path=fake)):
            pass


async def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataDirError, match="BOT_DATA_DIR"):
        async with App(settings_for(blocker / "data", embedded_worker=False)):
            pass


async def test_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path / "data", redis_url=f"unix://{tmp_path}/none.sock", embedded_worker=False
    )
    with pytest.raises(ServiceUnavailable, match="BOT_REDIS_URL"):
        async with App(settings):
            pass


def run_cli(
    args: list[str], data_dir: Path, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("BOT_")}
    environment.update(
        {
            "BOT_DATA_DIR": str(data_dir),
            "BOT_CONTEXT_SIZE": "1024",
            "BOT_WEB_SEARCH": "false",  # tests never reach the internet
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=300,
    )


@pytest.mark.model
async def test_piped_chat_prints_an_answer_and_the_next_run_remembers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = run_cli(["chat"], data, "My name is Zed. Say hi.", BOT_DEFAULT_MAX_TOKENS="24")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("bot> ")
    assert len(first.stdout.strip()) > len("bot>")
    second = run_cli(["chat"], data, "What is my name?", BOT_DEFAULT_MAX_TOKENS="24")
    assert second.returncode == 0, second.stderr
    # Read the stored conversation the way a third run would.
    async with EmbeddedRedis(data / "redis") as server:
        raw = aioredis.from_url(server.url, decode_responses=False)
        agent = Agent(ScriptedChatModel(), AsyncRedisSaver(client=raw))
        history = await agent.history("terminal:local:default:-")
        await raw.aclose()
    assert [message.text for message in history[::2]] == [
        "My name is Zed. Say hi.",
        "What is my name?",
    ]
    assert history[1].text == first.stdout.removeprefix("bot> ").strip()
    shown = run_cli(["chat"], data, "/settings show", BOT_DEFAULT_MAX_TOKENS="24")
    assert shown.returncode == 0, shown.stderr
    assert "max_tokens = 24  (default)" in shown.stdout


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli(["--help"], tmp_path / "data")
    assert result.returncode == 0
    assert "chat" in result.stdout and "serve" in result.stdout


def test_bad_configuration_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    result = run_cli(["chat"], tmp_path / "data", "hi", BOT_REDIS_URL="http://nope")
    assert result.returncode != 0
    assert "BOT_REDIS_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_out_of_range_default_is_a_configuration_error(tmp_path: Path) -> None:
    result = run_cli(["chat"], tmp_path / "data", "hi", BOT_DEFAULT_TEMPERATURE="7")
    assert result.returncode != 0
    assert "temperature" in result.stderr.lower()
    assert "2" in result.stderr


async def test_configured_urls_replace_the_embedded_servers(
    tmp_path: Path, redis_url: str, database_url: str, redis_client: aioredis.Redis
) -> None:
    data = tmp_path / "data"
    settings = settings_for(
        data, redis_url=redis_url, database_url=database_url, embedded_worker=False
    )
    async with App(settings) as app:
        assert app.redis_url == redis_url and app.database_url == database_url
        sink = RecordingSink()
        await app.chat.chat(LOCAL, "hello", sink)
    # Nothing embedded was started, and with no worker in the pool the reply says so.
    assert not (data / "redis").exists() and not (data / "postgres").exists()
    assert sink.failure is not None and "python -m inference.worker" in sink.failure


async def test_a_model_server_that_is_down_gets_a_clear_reply_and_the_app_serves_on(
    tmp_path: Path, redis_url: str, database_url: str, redis_client: aioredis.Redis
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    settings = settings_for(
        tmp_path / "data", redis_url=redis_url, database_url=database_url, llm_base_url=url
    )
    async with App(settings) as app:  # starts anyway: the server may come up later
        assert app.model_server is not None
        for _ in range(2):
            sink = RecordingSink()
            await app.chat.chat(LOCAL, "hello", sink)
            assert sink.failure is not None
            assert f"the model server at {url} is not reachable" in sink.failure
        stats = await BotStats(app.inference, app.chat.locks, app.model_server).render()
        assert stats.startswith(f"Backend: model server OpenAI-compatible server at {url}")
        assert "not answering" in stats
    # No worker of the pool was started for it.
    assert not await redis_client.keys("inference:worker:*")
