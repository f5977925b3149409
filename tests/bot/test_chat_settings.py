"""SettingsService against a real Redis: the scope chain, validation and permissions."""

from __future__ import annotations

import dataclasses

import pytest
import redis.asyncio as aioredis

from bot.chat_settings import (
    KNOWN_TOOLS,
    SETTING_SPECS,
    ChatSettings,
    SettingsService,
    spec_for,
)
from bot.config import SamplingDefaults
from bot.errors import PermissionDenied, SettingError
from bot.scope import Role, Scope, SettingLevel
from storage.settings_store import RedisSettingsStore

# model_validate skips the environment, so BOT_DEFAULT_* variables cannot skew the tests.
DEFAULTS = ChatSettings.from_defaults(SamplingDefaults.model_validate({}))

USER = Scope("discord", "guild1", "chan1", "u1", role=Role.USER, user_name="ann")
ADMIN = dataclasses.replace(USER, user_id="a1", role=Role.ADMIN, user_name="bob")
OPERATOR = dataclasses.replace(USER, user_id="o1", role=Role.OPERATOR, user_name="")


@pytest.fixture
def service(redis_client: aioredis.Redis) -> SettingsService:
    return SettingsService(RedisSettingsStore(redis_client), DEFAULTS)


def test_defaults_come_from_config_with_every_tool() -> None:
    defaults = ChatSettings.from_defaults(
        SamplingDefaults.model_validate({"temperature": 0.2, "max_tokens": 99})
    )
    assert defaults.temperature == 0.2
    assert defaults.max_tokens == 99
    assert defaults.tools == KNOWN_TOOLS
    assert set(SETTING_SPECS) == {f.name for f in dataclasses.fields(ChatSettings)}


async def test_narrowest_level_wins(service: SettingsService) -> None:
    assert await service.resolve(USER) == DEFAULTS

    await service.set(OPERATOR, "temperature", "0.1", SettingLevel.GLOBAL)
    assert (await service.resolve(USER)).temperature == 0.1
    await service.set(ADMIN, "temperature", "0.2", SettingLevel.SERVER)
    assert (await service.resolve(USER)).temperature == 0.2
    await service.set(ADMIN, "temperature", "0.3", SettingLevel.CHANNEL)
    assert (await service.resolve(USER)).temperature == 0.3
    await service.set(USER, "temperature", "0.4", SettingLevel.CONVERSATION)
    resolved = await service.resolve(USER)
    assert resolved.temperature == 0.4
    assert resolved.top_p == DEFAULTS.top_p  # untouched keys keep their defaults

    # A thread is its own conversation, in the same channel.
    thread = dataclasses.replace(USER, thread_id="t1")
    assert (await service.resolve(thread)).temperature == 0.3
    # Another channel of the server sees the server's value, not chan1's.
    other_channel = dataclasses.replace(USER, channel_id="chan2")
    assert (await service.resolve(other_channel)).temperature == 0.2
    # Another server sees only the global value.
    other_server = dataclasses.replace(USER, server_id="guild2")
    assert (await service.resolve(other_server)).temperature == 0.1
    # Another platform's server with the same id is another server.
    telegram = dataclasses.replace(USER, platform="telegram")
    assert (await service.resolve(telegram)).temperature == 0.1


async def test_show_names_each_value_source(service: SettingsService) -> None:
    await service.set(OPERATOR, "max_tokens", "100", SettingLevel.GLOBAL)
    await service.set(ADMIN, "tools", "web_search, calculator", SettingLevel.SERVER)
    await service.set(USER, "Top-P", "0.5", SettingLevel.CONVERSATION)

    shown = {s.name: s for s in await service.show(USER)}

    assert list(shown) == list(SETTING_SPECS)
    assert (shown["max_tokens"].value, shown["max_tokens"].source) == (100, "global")
    assert (shown["tools"].value, shown["tools"].source) == (
        ("calculator", "web_search"),
        "server",
    )
    assert shown["tools"].text == "calculator, web_search"
    assert (shown["top_p"].value, shown["top_p"].source) == (0.5, "conversation")
    assert (shown["seed"].value, shown["seed"].source) == (-1, "default")
    resolved = await service.resolve(USER)
    assert resolved.tools == ("calculator", "web_search")
    assert isinstance(resolved.tools, tuple)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("temperature", "hot", "temperature must be a number from 0.0 to 2.0 (got 'hot')"),
        ("temperature", "2.5", "temperature must be a number from 0.0 to 2.0 (got '2.5')"),
        ("temperature", "nan", "temperature must be a number from 0.0 to 2.0 (got 'nan')"),
        ("top_p", "-0.1", "top_p must be a number from 0.0 to 1.0"),
        ("repeat_penalty", "0.4", "repeat_penalty must be a number from 0.5 to 2.0"),
        ("top_k", "1.5", "top_k must be a whole number from 0 to 1000 (got '1.5')"),
        ("top_k", "1001", "top_k must be a whole number from 0 to 1000 (got '1001')"),
        ("max_tokens", "0", "max_tokens must be a whole number from 1 to 8192"),
        ("seed", "-2", "seed must be a whole number from -1 to 2147483647"),
        ("system_prompt", "   ", "system_prompt must be text of 1 to 4000 characters"),
        ("system_prompt", "x" * 4001, "(got 4001 characters)"),
        ("tools", "calculator,telnet", "unknown tool 'telnet'; tools must be 'all', 'none'"),
        ("tools", ",", "tools must be 'all', 'none' or a comma-separated list of: calculator"),
    ],
)
async def test_invalid_values_are_refused_with_the_allowed_range(
    service: SettingsService, name: str, raw: str, message: str
) -> None:
    with pytest.raises(SettingError) as caught:
        await service.set(USER, name, raw, SettingLevel.CONVERSATION)
    assert message in str(caught.value)
    assert await service.resolve(USER) == DEFAULTS  # nothing was stored


async def test_unknown_key_lists_the_known_keys(service: SettingsService) -> None:
    with pytest.raises(SettingError) as caught:
        await service.set(USER, "temprature", "1", SettingLevel.CONVERSATION)
    message = str(caught.value)
    assert message.startswith("unknown setting 'temprature'; known settings: temperature, ")
    assert all(name in message for name in SETTING_SPECS)
    with pytest.raises(SettingError, match="known settings"):
        await service.reset(USER, "nope", SettingLevel.CONVERSATION)


def test_valid_values_parse_to_their_types() -> None:
    assert spec_for("temperature").parse(" 1 ") == 1.0
    assert spec_for("top_k").parse("0") == 0
    assert spec_for("seed").parse(str(2**31 - 1)) == 2**31 - 1
    assert spec_for("system_prompt").parse("  Be terse.  ") == "Be terse."
    assert spec_for("system_prompt").parse("x" * 4000) == "x" * 4000
    tools = spec_for("tools")
    assert tools.parse("none") == ()
    assert tools.parse("ALL") == KNOWN_TOOLS
    assert tools.parse("search_documents,calculator,calculator") == (
        "calculator",
        "search_documents",
    )
    for spec in SETTING_SPECS.values():
        value = getattr(DEFAULTS, spec.name)
        assert spec.parse(spec.format_value(value)) == value


@pytest.mark.parametrize(
    ("scope", "allowed", "denied"),
    [
        (USER, [SettingLevel.CONVERSATION], [SettingLevel.CHANNEL, SettingLevel.SERVER]),
        (ADMIN, [SettingLevel.CONVERSATION, SettingLevel.CHANNEL, SettingLevel.SERVER], []),
        (OPERATOR, list(SettingLevel), []),
    ],
)
async def test_who_may_change_what(
    service: SettingsService,
    scope: Scope,
    allowed: list[SettingLevel],
    denied: list[SettingLevel],
) -> None:
    for level in allowed:
        await service.set(scope, "seed", "5", level)
        assert await service.reset(scope, "seed", level) == {"seed": 5}
    for level in [*denied, SettingLevel.GLOBAL]:
        if scope.role is Role.OPERATOR:
            break
        with pytest.raises(PermissionDenied):
            await service.set(scope, "seed", "5", level)
        with pytest.raises(PermissionDenied):
            await service.reset(scope, None, level)
    assert (await service.resolve(scope)).seed == -1


async def test_permission_messages_say_what_to_do_instead(service: SettingsService) -> None:
    with pytest.raises(PermissionDenied) as user_channel:
        await service.set(USER, "temperature", "1", SettingLevel.CHANNEL)
    assert str(user_channel.value) == (
        "only admins can change channel settings; ask an admin, or use --level conversation"
    )
    with pytest.raises(PermissionDenied) as admin_global:
        await service.set(ADMIN, "temperature", "1", SettingLevel.GLOBAL)
    assert str(admin_global.value) == (
        "only the bot operator can change global settings; ask the operator, or use --level server"
    )
    with pytest.raises(PermissionDenied, match="can reset server settings"):
        await service.reset(USER, "temperature", SettingLevel.SERVER)


async def test_set_returns_old_and_new_and_is_audited(service: SettingsService) -> None:
    assert await service.set(ADMIN, "temperature", "0.9", SettingLevel.SERVER) == (None, 0.9)
    assert await service.set(ADMIN, "temperature", "1.2", SettingLevel.SERVER) == (0.9, 1.2)
    assert await service.set(ADMIN, "tools", "none", SettingLevel.CHANNEL) == (None, ())

    entries = await service.audit(USER, 10)

    assert [(e.actor, e.level_key, e.name, e.old, e.new) for e in entries] == [
        ("discord:a1 (bob)", "channel:discord:guild1:chan1", "tools", None, []),
        ("discord:a1 (bob)", "server:discord:guild1", "temperature", 0.9, 1.2),
        ("discord:a1 (bob)", "server:discord:guild1", "temperature", None, 0.9),
    ]
    # Another server's audit does not show guild1's changes.
    other = dataclasses.replace(USER, server_id="guild2")
    assert await service.audit(other, 10) == []


async def test_reset_one_key_and_all_keys(service: SettingsService) -> None:
    level = SettingLevel.CONVERSATION
    await service.set(USER, "temperature", "1.5", level)
    await service.set(USER, "max_tokens", "64", level)
    await service.set(USER, "tools", "calculator", level)
    await service.set(ADMIN, "max_tokens", "128", SettingLevel.SERVER)

    assert await service.reset(USER, "temperature", level) == {"temperature": 1.5}
    assert await service.reset(USER, "temperature", level) == {}  # already unset
    resolved = await service.resolve(USER)
    assert (resolved.temperature, resolved.max_tokens) == (DEFAULTS.temperature, 64)

    assert await service.reset(USER, None, level) == {"max_tokens": 64, "tools": ("calculator",)}
    resolved = await service.resolve(USER)
    assert resolved.max_tokens == 128  # the server's value shows through again
    assert resolved.tools == KNOWN_TOOLS

    entries = await service.audit(USER, 3)
    assert sorted((e.name, e.old, e.new) for e in entries[:2]) == [
        ("max_tokens", 64, None),
        ("tools", ["calculator"], None),
    ]
    assert (entries[2].name, entries[2].old, entries[2].new) == ("temperature", 1.5, None)
    assert all(e.actor == "discord:u1 (ann)" for e in entries)


async def test_bad_stored_values_fall_through_to_wider_levels(
    service: SettingsService, redis_client: aioredis.Redis
) -> None:
    await service.set(ADMIN, "top_k", "20", SettingLevel.SERVER)
    # Written by hand, or by an older version with a wider range.
    await redis_client.hset(
        f"settings:{USER.level_key(SettingLevel.CONVERSATION)}", "top_k", "5000"
    )
    await redis_client.hset(f"settings:{USER.level_key(SettingLevel.CHANNEL)}", "top_k", '"x"')
    await redis_client.hset("settings:global", "retired_setting", "1")
    resolved = await service.resolve(USER)
    assert resolved.top_k == 20


async def test_tool_routing_is_a_choice_resolved_per_scope(service: SettingsService) -> None:
    assert DEFAULTS.tool_routing == "router"
    configured = SamplingDefaults.model_validate({"tool_routing": "model"})
    assert ChatSettings.from_defaults(configured).tool_routing == "model"
    await service.set(ADMIN, "tool_routing", " Model ", SettingLevel.SERVER)
    await service.set(USER, "tool-routing", "off", SettingLevel.CONVERSATION)
    assert (await service.resolve(USER)).tool_routing == "off"
    other = dataclasses.replace(USER, channel_id="chan2")
    assert (await service.resolve(other)).tool_routing == "model"
    with pytest.raises(SettingError, match="one of: router, model, off"):
        await service.set(USER, "tool_routing", "smart", SettingLevel.CONVERSATION)
    shown = {setting.name: setting for setting in await service.show(USER)}
    assert (shown["tool_routing"].text, shown["tool_routing"].source) == ("off", "conversation")
