"""How well the agent uses its tools: tool choice, argument validity, and the final answer
of calculator questions, for each way of choosing tools:

- "plain": the model chooses (`tool_routing=model`), bare system prompt;
- "guided": the model chooses, with our few-shot tool guidance (`agent_graph.prompts`);
- "guided+arithmetic": guidance plus written-out calculations sent straight to the
  calculator (`agent_graph.arithmetic_intent`);
- "guided+hint": that, plus the router's choice as a hint in the system prompt (what
  `tool_routing=model` runs);
- "router": the tool router chooses and the agent calls (`tool_routing=router`, the
  default; `agent_graph.tool_router`), the model answers from the result.

Three prompt sets, reported apart (the third, `benchmarks/word_problem_cases.py`: word
problems, decimal powers and rounding, in English and Spanish, with two that cannot be
read whole and must reach no tool); the first two: the 64 tuning prompts below (half English, half
Spanish, 16 for each need: calculator, web search, the community's documents, none),
which the router was tuned on, and the held-out set in
`benchmarks/data/tool_prompts_heldout.jsonl`, written before the router and never tuned
on. Every prompt runs as one real agent turn (the graph, the tools node, the real
calculator) with greedy decoding; web search answers from fixed local data, documents
from two guides in `benchmarks/data/` ranked by MiniLM, so the run never touches the
internet and scores do not drift with the news. Prints a Markdown table per set.

    python benchmarks/tool_eval.py [--model PATH] [--redis-url URL] [--limit N]
                                   [--sets tuning held-out] [--variants ...]
                                   [--chat-template FILE] [--tool-format auto|json|hermes|llama3]
    python benchmarks/tool_eval.py --decisions-only   # the router alone: no model, latency

Without --redis-url it starts an embedded Redis in a temporary folder; without
--model it uses the bundled SmolLM2-135M. Argument validity must be 100% for every
model (the pool constrains tool calls with a grammar); the other figures are reported
as they are.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent_graph.agent import Agent, TextDelta, TurnSettings  # noqa: E402
from agent_graph.graph import ToolRouting  # noqa: E402
from agent_graph.prompts import PromptStyle  # noqa: E402
from agent_graph.tool_router import ToolRouter  # noqa: E402
from agent_graph.tools.base import ToolContext  # noqa: E402
from agent_graph.tools.documents import DocumentSearch  # noqa: E402
from benchmarks.tool_eval_data import (  # noqa: E402
    SCOPE,
    Case,
    FixedSearch,
    GuideDocuments,
    held_out_cases,
)
from benchmarks.word_problem_cases import WORD_PROBLEMS  # noqa: E402
from storage.documents.embedder import Embedder  # noqa: E402

ALL_TOOLS = ("calculator", "web_search", "search_documents")

CASES: tuple[Case, ...] = (
    # -- calculator ---------------------------------------------------------------------
    Case("What is 37 * 91 + 5?", "en", "calculator", "3372"),
    Case("How much is 1234 times 5678?", "en", "calculator", "7006652"),
    Case("What is 15% of 860?", "en", "calculator", "129"),
    Case("Compute the square root of 7569.", "en", "calculator", "87"),
    Case("What is 2 to the power of 20?", "en", "calculator", "1048576"),
    Case("Divide 98765 by 5 and give me the result.", "en", "calculator", "19753"),
    Case(
        "If I have 3 boxes of 144 pens and give away 59, how many are left?",
        "en",
        "calculator",
        "373",
    ),
    Case("What is 12 factorial?", "en", "calculator", "479001600"),
    Case("¿Cuánto es 37 por 91 más 5?", "es", "calculator", "3372"),
    Case("¿Cuál es el 20% de 450?", "es", "calculator", "90"),
    Case("Calcula 987 * 654.", "es", "calculator", "645498"),
    Case("¿Cuál es la raíz cuadrada de 1764?", "es", "calculator", "42"),
    Case("¿Cuánto es 2 elevado a 16?", "es", "calculator", "65536"),
    Case("Si compro 7 entradas a 23 euros cada una, ¿cuánto pago?", "es", "calculator", "161"),
    Case("Divide 10000 entre 16.", "es", "calculator", "625"),
    Case("¿Cuánto es 999 más 1001 menos 250?", "es", "calculator", "1750"),
    # -- web search ---------------------------------------------------------------------
    Case("Who won the most recent Tour de France?", "en", "web_search"),
    Case("What is the weather forecast for Madrid tomorrow?", "en", "web_search"),
    Case("What is the latest version of Python released?", "en", "web_search"),
    Case("Search the web for news about llama.cpp.", "en", "web_search"),
    Case("What is the current price of bitcoin?", "en", "web_search"),
    Case("Who is the current prime minister of Japan?", "en", "web_search"),
    Case("Find recent reviews of the Framework laptop.", "en", "web_search"),
    Case("What movies are showing in cinemas this week?", "en", "web_search"),
    Case("¿Quién ganó el último Tour de Francia?", "es", "web_search"),
    Case("¿Qué tiempo hará mañana en Buenos Aires?", "es", "web_search"),
    Case(
        "Busca en internet las últimas noticias sobre inteligencia artificial.", "es", "web_search"
    ),
    Case("¿Cuál es el precio actual del euro en dólares?", "es", "web_search"),
    Case("¿Quién es el actual presidente de Chile?", "es", "web_search"),
    Case("¿Cuándo es el próximo partido del Real Madrid?", "es", "web_search"),
    Case("¿Cuál es la última versión de Linux publicada?", "es", "web_search"),
    Case("Busca reseñas recientes del teléfono Fairphone.", "es", "web_search"),
    # -- documents ----------------------------------------------------------------------
    Case("What are this server's rules about posting links?", "en", "search_documents"),
    Case("According to our community guide, when are the meetings?", "en", "search_documents"),
    Case("What does our handbook say about the code of conduct?", "en", "search_documents"),
    Case(
        "Check our documents: how do new members get the verified role?", "en", "search_documents"
    ),
    Case("What is our community's policy on spoilers?", "en", "search_documents"),
    Case("In our uploaded notes, who is responsible for the newsletter?", "en", "search_documents"),
    Case("Look in our docs for how to report a moderator.", "en", "search_documents"),
    Case("What do our rules say about selling things here?", "en", "search_documents"),
    Case("¿Qué dicen las normas de este servidor sobre enlaces?", "es", "search_documents"),
    Case("Según nuestra guía, ¿cuándo son las reuniones?", "es", "search_documents"),
    Case("¿Qué dice nuestro manual sobre el código de conducta?", "es", "search_documents"),
    Case(
        "Busca en nuestros documentos cómo se obtiene el rol de verificado.",
        "es",
        "search_documents",
    ),
    Case("¿Cuál es la política de nuestra comunidad sobre spoilers?", "es", "search_documents"),
    Case("En nuestras notas, ¿quién se encarga del boletín?", "es", "search_documents"),
    Case("Mira en nuestros documentos cómo denunciar a un moderador.", "es", "search_documents"),
    Case("¿Qué dicen nuestras normas sobre vender cosas aquí?", "es", "search_documents"),
    # -- no tool ------------------------------------------------------------------------
    Case("Hi! How are you today?", "en", "none"),
    Case("Write a haiku about autumn.", "en", "none"),
    Case("Translate 'good morning' into French.", "en", "none"),
    Case("Tell me a joke about cats.", "en", "none"),
    Case("What is a synonym for 'happy'?", "en", "none"),
    Case("Thanks for your help!", "en", "none"),
    Case("Explain in one sentence what a noun is.", "en", "none"),
    Case("Suggest a name for a pet goldfish.", "en", "none"),
    Case("¡Hola! ¿Qué tal estás?", "es", "none"),
    Case("Escribe un poema corto sobre el mar.", "es", "none"),
    Case("Traduce 'thank you' al español.", "es", "none"),
    Case("Cuéntame un chiste sobre perros.", "es", "none"),
    Case("Dame un sinónimo de 'rápido'.", "es", "none"),
    Case("¡Gracias por tu ayuda!", "es", "none"),
    Case("Explica en una frase qué es un verbo.", "es", "none"),
    Case("Sugiere un nombre para un gato.", "es", "none"),
)


# -- scoring ------------------------------------------------------------------------------


@dataclass
class Outcome:
    case: Case
    first_tool: str  # "none" when the model answered directly
    calls: int
    valid_calls: int
    answer: str

    @property
    def choice_ok(self) -> bool:
        return self.first_tool == self.case.needs

    @property
    def answer_ok(self) -> bool:
        digits = re.sub(r"(?<=\d)[,\s.](?=\d{3}\b)", "", self.answer)
        return bool(self.case.answer) and re.search(rf"\b{self.case.answer}\b", digits) is not None

    @property
    def wrong_number(self) -> bool:
        """A calculator question answered with a number, but not the right one."""
        return bool(self.case.answer) and not self.answer_ok and bool(re.search(r"\d", self.answer))


def _valid(agent: Agent, name: str, args: dict[str, Any]) -> bool:
    tool = next(
        (t for t in agent.toolbox.offered(ALL_TOOLS, ToolContext(SCOPE)) if t.name == name), None
    )
    if tool is None:
        return False
    # Valid arguments match the tool's schema; whether a calculator expression is right
    # shows in the calculator answers column.
    try:
        tool.args_model.model_validate(args)
    except ValidationError:
        return False
    return True


async def run_case(
    agent: Agent, case: Case, thread: str, max_tokens: int, routing: ToolRouting = "model"
) -> Outcome:
    settings = TurnSettings(
        system_prompt="You are a helpful assistant in a community chat. Be brief.",
        sampling={"temperature": 0.0, "max_tokens": max_tokens, "seed": 1},
        history_budget=2048,
        tools=ALL_TOOLS,
        document_scope=SCOPE,
        tool_routing=routing,
    )
    answer = []
    async for event in agent.stream_reply(thread, case.prompt, settings):
        if isinstance(event, TextDelta):
            answer.append(event.text)
    history = await agent.history(thread)
    calls = [call for m in history if isinstance(m, AIMessage) for call in m.tool_calls]
    return Outcome(
        case=case,
        first_tool=calls[0]["name"] if calls else "none",
        calls=len(calls),
        valid_calls=sum(_valid(agent, call["name"], call["args"]) for call in calls),
        answer="".join(answer),
    )


# What each compared variant runs: (prompt style, tool routing, arithmetic detection,
# the router's hint in `model` mode).
VARIANTS: dict[str, tuple[PromptStyle, ToolRouting, bool, bool]] = {
    "plain": ("plain", "model", False, False),
    "guided": ("guided", "model", False, False),
    "guided+arithmetic": ("guided", "model", True, False),
    "guided+hint": ("guided", "model", True, True),
    "router": ("guided", "router", True, False),
}


async def evaluate_model(
    model: BaseChatModel,
    style: PromptStyle,
    cases: Sequence[Case],
    max_tokens: int = 256,
    progress: bool = False,
    routing: ToolRouting = "model",
    parallel: int = 1,
    detect_arithmetic: bool = False,
    embedder: Embedder | None = None,
    documents: DocumentSearch | None = None,
    model_hint: bool = False,
) -> list[Outcome]:
    agent = Agent(
        model,
        InMemorySaver(),
        search_backend=FixedSearch(),
        document_search=documents or (GuideDocuments(embedder) if embedder else None),
        prompt_style=style,
        max_tool_rounds=3,
        embedder=embedder,
        detect_arithmetic=detect_arithmetic,
        model_hint=model_hint,
    )
    limit = asyncio.Semaphore(parallel)
    label = f"{style}-{routing}{'+arithmetic' if detect_arithmetic else ''}"
    label += "+hint" if model_hint else ""

    async def one(index: int, case: Case) -> Outcome:
        async with limit:
            outcome = await run_case(agent, case, f"{label}-{index}", max_tokens, routing)
        if progress:
            print(
                f"{label} {index + 1}/{len(cases)} needs {case.needs}: {outcome.first_tool}, "
                f"{outcome.valid_calls}/{outcome.calls} valid: {outcome.answer[:60]!r}",
                file=sys.stderr,
                flush=True,
            )
        return outcome

    return list(await asyncio.gather(*(one(i, case) for i, case in enumerate(cases))))


@dataclass
class Row:
    label: str
    outcomes: list[Outcome] = field(default_factory=list)

    def cells(self) -> list[str]:
        chosen = sum(o.choice_ok for o in self.outcomes)
        calls = sum(o.calls for o in self.outcomes)
        valid = sum(o.valid_calls for o in self.outcomes)
        calc = [o for o in self.outcomes if o.case.needs == "calculator"]
        right = sum(o.answer_ok for o in calc)
        wrong = sum(o.wrong_number for o in calc)
        return [
            self.label,
            str(len(self.outcomes)),
            _pct(chosen, len(self.outcomes)),
            f"{_pct(valid, calls)} ({valid}/{calls})" if calls else "-",
            f"{_pct(right, len(calc))} ({right}/{len(calc)})" if calc else "-",
            str(wrong) if calc else "-",
        ]


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def table(results: dict[str, list[Outcome]]) -> str:
    header = [
        "variant / subset",
        "prompts",
        "tool choice",
        "valid arguments",
        "calculator answers",
        "wrong numbers",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for style, outcomes in results.items():
        rows = [Row(f"{style}: all", outcomes)]
        for language in ("en", "es"):
            rows.append(
                Row(f"{style}: {language}", [o for o in outcomes if o.case.language == language])
            )
        for need in ("calculator", "web_search", "search_documents", "none"):
            rows.append(
                Row(f"{style}: needs {need}", [o for o in outcomes if o.case.needs == need])
            )
        lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


# -- running against the pool ------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    case: Case
    tool: str
    valid: bool  # arguments the chosen tool accepts
    seconds: float  # wall clock
    cpu_seconds: float  # CPU time of the process: what the decision costs, without waits
    answer: str = ""  # the calculator's line, when it is the answer (no model involved)

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.case, self.tool, 0, 0, self.answer)


async def router_decisions(
    router: ToolRouter, cases: Sequence[Case], forget: Callable[[], None], repeats: int = 5
) -> list[Decision]:
    """The router alone on each case (no model): its choice, and the median of `repeats`
    timings of the decision, each with no embedding remembered (`forget`)."""
    agent_tools = {
        tool.name: tool
        for tool in Agent(
            _NoModel(), InMemorySaver(), search_backend=FixedSearch(), document_search=_NoDocs()
        ).toolbox.offered(ALL_TOOLS, ToolContext(SCOPE))
    }
    await router.route("warm up", ALL_TOOLS, SCOPE)  # the examples are embedded once
    decisions = []
    for case in cases:
        timings, cpu = [], []
        for _ in range(repeats):
            forget()
            started, cpu_started = time.perf_counter(), time.process_time()
            route = await router.route(case.prompt, ALL_TOOLS, SCOPE)
            timings.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        valid = True
        if route.tool != "none":
            try:
                agent_tools[route.tool].args_model.model_validate(route.arguments)
            except ValidationError:
                valid = False
        answer = ""
        if route.calculation is not None and route.calculation.whole_message:
            # The agent answers with the calculator's line itself (agent_graph.decisions).
            answer = await agent_tools["calculator"].run(
                agent_tools["calculator"].args_model.model_validate(route.arguments),
                ToolContext(SCOPE),
            )
        decisions.append(
            Decision(
                case,
                route.tool,
                valid,
                statistics.median(timings),
                statistics.median(cpu),
                answer,
            )
        )
    return decisions


def decisions_table(decisions: dict[str, list[Decision]]) -> str:
    header = [
        "set / subset",
        "prompts",
        "tool choice",
        "valid arguments",
        "calculator answers",
        "wrong numbers",
        "p50 ms",
        "p95 ms",
        "CPU p95 ms",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, found in decisions.items():
        subsets = [("all", found)]
        subsets += [(lang, [d for d in found if d.case.language == lang]) for lang in ("en", "es")]
        subsets += [
            (f"needs {need}", [d for d in found if d.case.needs == need])
            for need in ("calculator", "web_search", "search_documents", "none")
        ]
        for label, rows in subsets:
            if not rows:  # a set with no prompt of that need
                continue
            ms = sorted(1000 * d.seconds for d in rows)
            cpu_ms = sorted(1000 * d.cpu_seconds for d in rows)
            chosen = sum(d.tool == d.case.needs for d in rows)
            calls = [d for d in rows if d.tool != "none"]
            valid = sum(d.valid for d in calls)
            at95 = min(len(ms) - 1, round(0.95 * (len(ms) - 1)))
            calc = [d.outcome for d in rows if d.case.needs == "calculator"]
            right, wrong = sum(o.answer_ok for o in calc), sum(o.wrong_number for o in calc)
            answers = (
                f"{_pct(right, len(calc))} ({right}/{len(calc)}) | {wrong}" if calc else "- | -"
            )
            lines.append(
                f"| {name}: {label} | {len(rows)} | {_pct(chosen, len(rows))} | "
                f"{_pct(valid, len(calls))} ({valid}/{len(calls)}) | {answers} | "
                f"{statistics.median(ms):.1f} | {ms[at95]:.1f} | {cpu_ms[at95]:.1f} |"
            )
    return "\n".join(lines)


class _NoModel(BaseChatModel):
    """Stands in where only the toolbox is wanted; never asked to generate."""

    @property
    def _llm_type(self) -> str:
        return "none"

    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


class _NoDocs:
    async def search(self, scope: str, query: str, k: int = 5) -> list[Any]:
        return []


def prompt_sets(names: Sequence[str], limit: int) -> dict[str, tuple[Case, ...]]:
    sets = {"tuning": CASES, "held-out": held_out_cases(), "word-problems": WORD_PROBLEMS}
    return {name: sets[name][:limit] if limit else sets[name] for name in names}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: SmolLM2)")
    parser.add_argument("--redis-url", default="", help="use this Redis instead of an embedded one")
    parser.add_argument("--limit", type=int, default=0, help="only the first N prompts of a set")
    parser.add_argument("--sets", nargs="+", default=["tuning", "held-out", "word-problems"])
    parser.add_argument("--ctx", type=int, default=4096, help="context tokens for the worker")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--parallel", type=int, default=4, help="prompts run at once")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument(
        "--decisions-only", action="store_true", help="the router alone: choices and latency"
    )
    parser.add_argument(
        "--chat-template", type=Path, default=None, help="Jinja template replacing the model's"
    )
    parser.add_argument(
        "--tool-format",
        default="auto",
        choices=["auto", "json", "hermes", "llama3"],
        help="tool-call format",
    )
    args = parser.parse_args()

    from inference.chat_model import PoolChatModel
    from inference.client import InferenceClient
    from inference.embedded import EmbeddedWorker
    from inference.model_files import read_chat_template, resolve_model_path
    from storage.documents import MiniLMEmbedder, RecentEmbeddings
    from storage.embedded_redis import EmbeddedRedis
    from storage.redis_conn import open_redis

    sets = prompt_sets(args.sets, args.limit)
    embedder = RecentEmbeddings(MiniLMEmbedder())  # as the app shares it: router and store
    documents = GuideDocuments(embedder)
    if args.decisions_only:
        router = ToolRouter(embedder, documents)
        found = {
            name: await router_decisions(router, cases, embedder.clear)
            for name, cases in sets.items()
        }
        print("the tool router alone, median of 5 decisions per prompt\n")
        print(decisions_table(found))
        return
    model_path = resolve_model_path(args.model)
    read_chat_template(args.chat_template, setting="--chat-template")  # fails fast if bad
    results: dict[str, dict[str, list[Outcome]]] = {name: {} for name in sets}
    with tempfile.TemporaryDirectory() as scratch:
        server = None
        redis_url = args.redis_url
        if not redis_url:
            server = EmbeddedRedis(Path(scratch) / "redis")
            server.start()
            redis_url = server.url
        try:
            redis = await open_redis(redis_url)
            slots = max(1, args.parallel)
            async with EmbeddedWorker(
                redis_url,
                model_path,
                slots=slots,
                ctx_per_slot=args.ctx,
                chat_template=args.chat_template,
                tool_format=args.tool_format,
            ):
                model = PoolChatModel(client=InferenceClient(redis))
                for set_name, cases in sets.items():
                    for name in args.variants:
                        style, routing, arithmetic, hinted = VARIANTS[name]
                        results[set_name][name] = await evaluate_model(
                            model,
                            style,
                            cases,
                            args.max_tokens,
                            progress=True,
                            routing=routing,
                            parallel=slots,
                            detect_arithmetic=arithmetic,
                            embedder=embedder,
                            documents=documents,
                            model_hint=hinted,
                        )
            await redis.aclose()
        finally:
            if server is not None:
                server.stop()
    for set_name, by_variant in results.items():
        print(f"\n{set_name} set, model: {model_path.name}, greedy decoding\n")
        print(table(by_variant))


if __name__ == "__main__":
    asyncio.run(main())
