"""The tool-use benchmark's scoring, on a scripted model whose choices are known.

The benchmark itself needs the real model (`python benchmarks/tool_eval.py`); this
checks that what it reports is what happened.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from agent_graph.router_examples import EXAMPLES
from agent_graph.tool_router import ToolRouter
from tests.fakes import ScriptedChatModel, tool_call


def load_tool_eval() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "tool_eval.py"
    spec = importlib.util.spec_from_file_location("tool_eval", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tool_eval"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["tuning", "held-out"])
def test_the_prompt_sets_are_balanced_and_apart(name: str) -> None:
    tool_eval = load_tool_eval()
    cases = tool_eval.prompt_sets([name], 0)[name]
    assert len(cases) >= 60
    for need in ("calculator", "web_search", "search_documents", "none"):
        for language in ("en", "es"):
            assert sum(c.needs == need and c.language == language for c in cases) >= 7
    for case in cases:
        assert (case.needs == "calculator") == bool(case.answer)
    sets = tool_eval.prompt_sets(["tuning", "held-out"], 0)
    assert not {c.prompt for c in sets["tuning"]} & {c.prompt for c in sets["held-out"]}


def test_the_router_examples_hold_no_benchmark_prompt() -> None:
    tool_eval = load_tool_eval()
    examples = {text for texts in EXAMPLES.values() for text in texts}
    for cases in tool_eval.prompt_sets(["tuning", "held-out"], 0).values():
        assert not examples & {case.prompt for case in cases}


async def test_router_decisions_are_scored_and_timed() -> None:
    tool_eval = load_tool_eval()
    case = tool_eval.Case
    cases = [
        case("What is 6 * 7?", "en", "calculator", "42"),
        case("Who is the current president of Chile?", "en", "web_search"),
        case("Hola", "es", "none"),
        case("Who edits our newsletter?", "en", "search_documents"),  # no embedder: missed
    ]
    forgotten: list[bool] = []
    found = await tool_eval.router_decisions(ToolRouter(), cases, lambda: forgotten.append(True))
    assert [d.tool for d in found] == ["calculator", "web_search", "none", "none"]
    assert all(d.valid for d in found) and len(forgotten) == 5 * len(cases)
    table = tool_eval.decisions_table({"tuning": found})
    assert found[0].answer == "6 * 7 = 42"  # the calculator's line is the answer
    assert "| tuning: all | 4 | 75% | 100% (2/2) | 100% (1/1) | 0 |" in table
    assert "| tuning: needs search_documents | 1 | 0% | - (0/0) | - | - |" in table


async def test_scores_reflect_what_the_model_did() -> None:
    tool_eval = load_tool_eval()
    case = tool_eval.Case
    cases = [
        case("What is 37 * 91 + 5?", "en", "calculator", "3372"),
        case("¿Cuánto es 2 elevado a 16?", "es", "calculator", "65536"),
        case("Who won the Tour?", "en", "web_search"),
        case("Hola", "es", "none"),
    ]
    model = ScriptedChatModel()
    model.enqueue(
        tool_call("calculator", expression="37 * 91 + 5"),
        "It is 3,372.",  # right tool, valid arguments, right answer
        # Arguments that match the schema but do not evaluate: valid, and a wrong answer.
        tool_call("calculator", expression="2 elevado 16"),
        "No sé.",
        "I think it was X.",  # should have searched
        "¡Hola!",  # right: no tool
    )
    outcomes = await tool_eval.evaluate_model(model, "guided", cases)
    assert [o.first_tool for o in outcomes] == ["calculator", "calculator", "none", "none"]
    assert [o.choice_ok for o in outcomes] == [True, True, False, True]
    assert [(o.calls, o.valid_calls) for o in outcomes] == [(1, 1), (1, 1), (0, 0), (0, 0)]
    assert [o.answer_ok for o in outcomes[:2]] == [True, False]
    assert model.calls[0]["kwargs"]["temperature"] == 0.0  # greedy
    table = tool_eval.table({"guided": outcomes})
    assert "| guided: all | 4 | 75% | 100% (2/2) | 50% (1/2) | 0 |" in table
    assert "| guided: needs web_search | 1 | 0% | - | - | - |" in table
