"""Native tool-call formats: a chat template with `<tool_call>` tags gets its tools, calls
and results in that format, and calls stay grammar-constrained inside the tags.

SmolLM2's own template knows no tools, so these tests give the real model a ChatML
template with Hermes-style tools (tests/inference/templates), as Qwen-like models ship.
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import redis.asyncio as aioredis

from inference.batch_engine import JobDone, TextOut
from inference.errors import InvalidJob
from inference.llama_backend import BackendConfig
from inference.model_runner import ModelRunner, ToolCallOut, _ToolAnswer
from inference.sampling import SamplingParams
from inference.tool_calls import plan_tools, prepare_messages
from inference.tool_formats import HERMES, JSON_OBJECT, LLAMA3, choose_format, detect_format
from inference.worker import Worker, WorkerConfig
from tests.inference.test_tool_calls import (
    HISTORY,
    PROMPTS,
    SCHEMAS,
    TOOLS,
    call_once,
    the_call,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = Path(__file__).parent / "templates"
HERMES_TEMPLATE = (TEMPLATES / "hermes_chatml.jinja").read_text()
LLAMA3_TEMPLATE = (TEMPLATES / "llama3_tools.jinja").read_text()


@pytest.fixture(scope="module")
def runner(model_path: Path) -> Iterator[ModelRunner]:
    config = BackendConfig(model_path=model_path, slots=1, ctx_per_slot=1024)
    runner = ModelRunner(config, chat_template=HERMES_TEMPLATE)
    yield runner
    runner.close()


@pytest.fixture
def native_worker(
    redis_client: aioredis.Redis, redis_url: str, model_path: Path
) -> Iterator[Worker]:
    backend = BackendConfig(model_path=model_path, slots=2, ctx_per_slot=1024)
    worker = Worker(
        WorkerConfig(redis_url=redis_url, name="native-worker"),
        functools.partial(ModelRunner, backend, chat_template=HERMES_TEMPLATE),
    )
    worker.start()
    yield worker
    worker.stop()


def finished_job(reason: str) -> JobDone:
    return JobDone(
        "j", reason, prompt_tokens=10, reused_tokens=0, completion_tokens=20, restored_tokens=0
    )


def test_the_format_follows_the_template() -> None:
    assert detect_format(HERMES_TEMPLATE) is HERMES
    assert detect_format(LLAMA3_TEMPLATE) is LLAMA3
    assert detect_format("{% for m in messages %}{{ m.content }}{% endfor %}") is JSON_OBJECT
    assert choose_format(HERMES_TEMPLATE, "json") is JSON_OBJECT
    with pytest.raises(InvalidJob, match="unknown tool-call format"):
        choose_format(HERMES_TEMPLATE, "xml")


@pytest.mark.model
def test_the_template_renders_tools_calls_and_results_itself(runner: ModelRunner) -> None:
    assert runner.call_format is HERMES
    plan = plan_tools(TOOLS, "auto", runner.call_format)
    assert plan is not None
    prompt = runner.template.render(
        prepare_messages(HISTORY, plan, runner.call_format), plan.template_tools()
    )
    assert "You can call tools." not in prompt  # our own instructions are not added
    listed = prompt.split("<tools>\n", 1)[1].split("</tools>", 1)[0]
    assert [json.loads(line)["function"]["name"] for line in listed.splitlines()] == list(SCHEMAS)
    call = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "12*7"}}\n</tool_call>'
    assert call in prompt
    assert "<tool_response>\n84\n</tool_response>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_the_call_grammar_is_wrapped_in_the_tags() -> None:
    plan = plan_tools(TOOLS, "required", HERMES)
    assert plan is not None and plan.lazy_trigger is None
    assert plan.grammar.startswith('root ::= "<tool_call>"')
    auto = plan_tools(TOOLS, "auto", HERMES)
    assert auto is not None and auto.lazy_trigger is not None
    # Anchored at both ends: llama.cpp then matches the whole answer so far.
    assert auto.lazy_trigger.startswith("^") and auto.lazy_trigger.endswith("$")


def test_text_before_a_tagged_call_streams_and_the_call_is_parsed() -> None:
    plan = plan_tools(TOOLS, "auto", HERMES)
    assert plan is not None
    answer = _ToolAnswer(plan)
    shown = answer.feed(TextOut("j", "Let me check. <tool"))
    assert shown == [TextOut("j", "Let me check. ")]  # the tag's start is held back
    body = '_call>\n{"name": "calculator", "arguments": {"expression": "1+1"}}\n</tool_call>'
    assert answer.feed(TextOut("j", body)) == []
    done = finished_job("stop")
    call, finished = answer.finish(done)
    assert isinstance(call, ToolCallOut) and call.call.arguments == {"expression": "1+1"}
    assert isinstance(finished, JobDone) and finished.reason == "tool_calls"


def test_held_text_that_was_not_a_tag_is_shown_at_the_end() -> None:
    plan = plan_tools(TOOLS, "auto", HERMES)
    assert plan is not None
    answer = _ToolAnswer(plan)
    assert answer.feed(TextOut("j", "a <")) == [TextOut("j", "a ")]
    assert answer.feed(TextOut("j", "b> c <tool_")) == [TextOut("j", "<b> c ")]
    done = finished_job("length")
    assert answer.finish(done) == [TextOut("j", "<tool_"), done]


@pytest.mark.model
def test_special_tokens_are_shown_only_when_asked(runner: ModelRunner) -> None:
    backend = runner.backend
    (start,) = backend.tokenize("<|im_start|>")
    assert backend.piece(start) == b""
    backend.render_as_text(start)
    try:
        assert backend.piece(start) == b"<|im_start|>"
    finally:
        backend._shown_special.discard(start)


@pytest.mark.model
@pytest.mark.parametrize("name", sorted(SCHEMAS))
async def test_a_named_native_call_always_parses_and_validates(native_worker, client, name) -> None:
    choice = {"type": "function", "function": {"name": name}}
    results = await asyncio.gather(
        *(call_once(client, PROMPTS[name], choice, seed) for seed in range(1, 5))
    )
    for chunks in results:
        call = the_call(chunks)
        assert call.tool_name == name
        jsonschema.validate(json.loads(call.text), SCHEMAS[name])


@pytest.mark.model
async def test_auto_native_answers_are_text_or_a_valid_call(native_worker, client) -> None:
    results = await asyncio.gather(
        *(call_once(client, prompt, "auto", seed) for prompt in PROMPTS.values() for seed in (1, 2))
    )
    for chunks in results:
        assert chunks[-1].kind == "done"
        text = "".join(chunk.text for chunk in chunks if chunk.kind == "delta")
        assert "<tool_call>" not in text
        calls = [chunk for chunk in chunks if chunk.kind == "tool_call"]
        if calls:
            assert chunks[-1].finish_reason == "tool_calls"
            jsonschema.validate(json.loads(calls[0].text), SCHEMAS[calls[0].tool_name])
        else:
            assert text.strip()


def weather_call(city: str, call_id: str) -> list[dict[str, object]]:
    """An earlier question answered with a call (its result left out)."""
    arguments = json.dumps({"city": city, "unit": "celsius"})
    return [
        {"role": "user", "content": f"Is it cold in {city} today?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments},
                }
            ],
        },
    ]


@pytest.mark.model
async def test_an_auto_answer_that_opens_the_tag_becomes_a_valid_call(
    native_worker, client
) -> None:
    # Each earlier question was answered with a tagged call: greedy decoding copies the
    # pattern, so the lazy grammar wakes at the tag and holds the call to the schema.
    cities = ["Oslo", "Rome", "Lima"]
    history = [message for n, city in enumerate(cities) for message in weather_call(city, f"c{n}")]
    messages = [*history, {"role": "user", "content": "Is it cold in Paris today?"}]
    sampling = {"temperature": 0.0, "max_tokens": 96}
    stream = client.stream(messages, sampling, tools=TOOLS, tool_choice="auto")
    call = the_call([chunk async for chunk in stream])
    assert call.tool_name == "get_weather"
    assert json.loads(call.text) == {"city": "Paris", "unit": "celsius"}


def probe(call_format: str, *sequences: str) -> int:
    """Feed token sequences ("|" between tokens) to a lazy call grammar, in a child
    process; its exit status (negative: killed by that signal)."""
    command = [sys.executable, "-m", "tests.inference.lazy_grammar_probe", call_format]
    return subprocess.run([*command, *sequences], cwd=ROOT, capture_output=True).returncode


# Tokens that run past the start of a call, or begin one mid-answer in our format:
# none may wake the grammar. One that did would hand it text it cannot accept, and
# llama.cpp would abort the whole worker.
RUNNING_PAST = {
    "json": ["{}", "{{", "Hi|{}", "Hi| {|}}"],
    "hermes": ["<|tool|_|call|></", "Sure|<|tool|_|call|></"],
}
# A clean start wakes the grammar and goes on as the call's grammar allows ...
CLEAN_START = {"json": ' {|"|name|":', "hermes": 'Hi|<|tool|_|call|>|\n|{"|name|":'}
# ... and, awake, the grammar holds the answer to it: proven by a wrong token after a
# clean start, which is fatal to llama.cpp.
WOKEN_THEN_WRONG = {"json": ' {|"|{}', "hermes": "Hi|<|tool|_|call|>|{}"}


@pytest.mark.model
@pytest.mark.parametrize("call_format", sorted(RUNNING_PAST))
def test_the_grammar_wakes_only_on_a_clean_start_of_a_call(call_format: str) -> None:
    assert probe(call_format, *RUNNING_PAST[call_format], CLEAN_START[call_format]) == 0
    assert probe(call_format, WOKEN_THEN_WRONG[call_format]) == -signal.SIGABRT


@pytest.fixture(scope="module")
def llama3_runner(model_path: Path) -> Iterator[ModelRunner]:
    config = BackendConfig(model_path=model_path, slots=3, ctx_per_slot=1024)
    runner = ModelRunner(config, chat_template=LLAMA3_TEMPLATE)
    yield runner
    runner.close()


@pytest.mark.model
def test_a_llama3_template_shows_calls_with_parameters(llama3_runner: ModelRunner) -> None:
    assert llama3_runner.call_format is LLAMA3
    plan = plan_tools(TOOLS, "auto", LLAMA3)
    assert plan is not None
    prompt = llama3_runner.template.render(
        prepare_messages(HISTORY, plan, LLAMA3), plan.template_tools()
    )
    assert '"name": function name, "parameters"' in prompt  # the template's own words
    assert '{"name": "calculator", "parameters": {"expression": "12*7"}}<|eot_id|>' in prompt
    assert "<|start_header_id|>ipython<|end_header_id|>\n\n84<|eot_id|>" in prompt


@pytest.mark.model
def test_a_forced_llama3_call_uses_parameters_and_validates(llama3_runner: ModelRunner) -> None:
    for seed, name in enumerate(sorted(SCHEMAS), start=1):
        choice = {"type": "function", "function": {"name": name}}
        params = SamplingParams(temperature=1.0, seed=seed, max_tokens=192)
        messages = [{"role": "user", "content": PROMPTS[name]}]
        llama3_runner.start(name, messages, params, tools=TOOLS, tool_choice=choice)
    calls = {}
    while llama3_runner.active_jobs:
        for event in llama3_runner.step():
            assert not isinstance(event, TextOut), event  # a forced answer is all call
            if isinstance(event, ToolCallOut):
                calls[event.job_id] = event.call
    assert set(calls) == set(SCHEMAS)
    for name, call in calls.items():
        assert call.name == name
        jsonschema.validate(call.arguments, SCHEMAS[name])
