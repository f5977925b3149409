"""How well a model uses the agent's tools: tool choice, argument validity, and the
final answer of calculator questions, with the bare prompt ("plain"), with our few-shot
tool guidance ("guided", `agent_graph.prompts`), and with guidance plus the two-step
greedy tool choice ("routed", `agent_graph.routing`, the `BOT_TOOL_ROUTING` setting),
and with guidance plus the calculator called directly for written-out calculations
("guided+arithmetic", `agent_graph.arithmetic_intent`, what the bot runs by default).

64 labelled prompts, half English and half Spanish, each needing the calculator, web
search, the community's documents, or no tool. Every prompt runs as one real agent
turn (the graph, the tools node, the real calculator) with greedy decoding; web search
and documents answer from fixed local data, so the run never touches the internet and
scores do not drift with the news. Prints a Markdown table per prompt style.

    python benchmarks/tool_eval.py [--model PATH] [--redis-url URL] [--limit N]
                                   [--chat-template FILE] [--tool-format auto|json|hermes|llama3]

Without --redis-url it starts an embedded Redis in a temporary folder; without
--model it uses the bundled SmolLM2-135M. Argument validity must be 100% for every
model (the pool constrains tool calls with a grammar); the other figures are reported
as they are.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent_graph.agent import Agent, TextDelta, TurnSettings  # noqa: E402
from agent_graph.prompts import PromptStyle  # noqa: E402
from agent_graph.tools.base import ToolContext  # noqa: E402
from agent_graph.tools.web_search import SearchResult  # noqa: E402

Need = Literal["calculator", "web_search", "search_documents", "none"]
ALL_TOOLS = ("calculator", "web_search", "search_documents")
SCOPE = "bench:community"


@dataclass(frozen=True)
class Case:
    prompt: str
    language: Literal["en", "es"]
    needs: Need
    answer: str = ""  # for calculator cases: the number the answer must contain


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


# -- fixed local data for the search tools ------------------------------------------------


class FixedSearch:
    name = "fixed"

    async def search(self, query: str, max_results: int) -> list[SearchResult]:
        return [SearchResult(f"About {query}", "https://example.org/result", f"Facts on {query}.")]


@dataclass(frozen=True)
class FixedPassage:
    document_id: int
    title: str
    position: int
    text: str
    score: float = 1.0
    source: str = "handbook.md"


class FixedDocuments:
    async def search(self, scope: str, query: str, k: int = 5) -> list[FixedPassage]:
        if scope != SCOPE:
            return []
        return [FixedPassage(1, "Community handbook", 0, f"Our handbook on {query}: be kind.")]


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


async def run_case(agent: Agent, case: Case, thread: str, max_tokens: int) -> Outcome:
    settings = TurnSettings(
        system_prompt="You are a helpful assistant in a community chat. Be brief.",
        sampling={"temperature": 0.0, "max_tokens": max_tokens, "seed": 1},
        history_budget=2048,
        tools=ALL_TOOLS,
        document_scope=SCOPE,
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


# What each compared variant runs: (prompt style, two-step routing, arithmetic detection).
VARIANTS: dict[str, tuple[PromptStyle, bool, bool]] = {
    "plain": ("plain", False, False),
    "guided": ("guided", False, False),
    "routed": ("guided", True, False),
    "guided+arithmetic": ("guided", False, True),
}


async def evaluate_model(
    model: BaseChatModel,
    style: PromptStyle,
    cases: Sequence[Case],
    max_tokens: int = 256,
    progress: bool = False,
    route_tools: bool = False,
    parallel: int = 1,
    detect_arithmetic: bool = False,
) -> list[Outcome]:
    agent = Agent(
        model,
        InMemorySaver(),
        search_backend=FixedSearch(),
        document_search=FixedDocuments(),
        prompt_style=style,
        max_tool_rounds=3,
        route_tools=route_tools,
        detect_arithmetic=detect_arithmetic,
    )
    limit = asyncio.Semaphore(parallel)
    label = f"{style}{'+routed' if route_tools else ''}{'+arithmetic' if detect_arithmetic else ''}"

    async def one(index: int, case: Case) -> Outcome:
        async with limit:
            outcome = await run_case(agent, case, f"{label}-{index}", max_tokens)
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
        return [
            self.label,
            str(len(self.outcomes)),
            _pct(chosen, len(self.outcomes)),
            f"{_pct(valid, calls)} ({valid}/{calls})" if calls else "-",
            f"{_pct(right, len(calc))} ({right}/{len(calc)})" if calc else "-",
        ]


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def table(results: dict[str, list[Outcome]]) -> str:
    header = ["style / subset", "prompts", "tool choice", "valid arguments", "calculator answers"]
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: SmolLM2)")
    parser.add_argument("--redis-url", default="", help="use this Redis instead of an embedded one")
    parser.add_argument("--limit", type=int, default=0, help="only the first N prompts")
    parser.add_argument("--ctx", type=int, default=4096, help="context tokens for the worker")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--parallel", type=int, default=4, help="prompts run at once")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
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
    from storage.embedded_redis import EmbeddedRedis
    from storage.redis_conn import open_redis

    cases = CASES[: args.limit] if args.limit else CASES
    model_path = resolve_model_path(args.model)
    read_chat_template(args.chat_template, setting="--chat-template")  # fails fast if bad
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
                results = {}
                for name in args.variants:
                    style, routed, arithmetic = VARIANTS[name]
                    results[name] = await evaluate_model(
                        model,
                        style,
                        cases,
                        args.max_tokens,
                        progress=True,
                        route_tools=routed,
                        parallel=slots,
                        detect_arithmetic=arithmetic,
                    )
            await redis.aclose()
        finally:
            if server is not None:
                server.stop()
    print(f"model: {model_path.name}, {len(cases)} prompts, greedy decoding\n")
    print(table(results))


if __name__ == "__main__":
    asyncio.run(main())
