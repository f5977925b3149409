"""Answers from documents a person can trust: is the answer in what is shown, is anything
shown that the documents do not support, and how long an answer takes.

The held-out set `benchmarks/data/answers/questions.jsonl` (written before any tuning:
46 questions, Spanish and English, over four documents of `benchmarks/data/answers/`,
each with the span of text that answers it) is asked in the chat, one question at a
time, through the real agent (tool router, document search, the bundled model through
the worker pool, greedy decoding), with the four documents of the tool benchmark in the
same scope as distractors. For each `document_answers` mode:

- hit: the answer span is in what is shown (accents and case ignored);
- documents: the router sent the question to the documents;
- unsupported shown: sentences of the model's own shown unmarked that a strict judge
  finds unsupported by the passages read (every number written there, and at least
  `JUDGE_SHARE` of the content words in one window of passage sentences), and how
  many answers showed any;
- seconds per answer: median and 90th percentile, the whole turn.

`strict` and `off` run through the agent; `mark` is the display of `off`'s answers in
that mode (same generation). `--dump FILE` writes every sentence the model wrote with
each support measure, for labelling; `--labels FILE` reads such a file with a
`supported` field added by hand and prints how well each check agrees with it.

    python benchmarks/answer_eval.py [--modes strict off] [--limit N] [--dump FILE]
    python benchmarks/answer_eval.py --labels benchmarks/data/answers/labelled_sentences.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from langchain_core.messages import ToolMessage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent_graph.agent import Agent, TextDelta, TurnSettings  # noqa: E402
from agent_graph.document_answer import (  # noqa: E402
    EVIDENCE_ONLY,
    UNSUPPORTED_MARK,
    DocumentAnswers,
    shown_answer,
)
from agent_graph.tools.documents import parse_passages  # noqa: E402
from benchmarks.tool_eval_data import (  # noqa: E402
    DATA,
    GUIDES,
    SCOPE,
    FixedSearch,
    GuideDocuments,
)
from storage.documents.content_words import fold, numbers, overlap, stems  # noqa: E402
from storage.documents.embedder import Embedder  # noqa: E402
from storage.documents.support import (  # noqa: E402
    WINDOW,
    SupportCheck,
    answer_sentences,
    check_sentences,
)

ANSWERS = DATA / "answers"
QUESTIONS = ANSWERS / "questions.jsonl"
DISTRACTORS = (*GUIDES, "chess_club_rules.md", "club_senderismo.md")
JUDGE_SHARE = 0.8
EVIDENCE_HEADING = "\n\nFrom the documents:"
TOOLS = ("calculator", "web_search", "search_documents")


@dataclass(frozen=True)
class AnswerCase:
    question: str
    language: str
    document: str
    answer: str


@dataclass
class Result:
    case: AnswerCase
    shown: str
    seconds: float
    routed: bool
    passages: list[tuple[int, str]] = field(default_factory=list)

    @property
    def hit(self) -> bool:
        return fold(self.case.answer) in fold(self.shown)

    def own_sentences(self) -> list[str]:
        """The sentences shown as the model's own, unmarked (not quotes, not sources)."""
        if not self.routed or self.shown.startswith(EVIDENCE_ONLY):
            return []
        own = self.shown.split(EVIDENCE_HEADING, 1)[0].split("\n\nSources:", 1)[0]
        return [s for s in answer_sentences(own) if not s.startswith(UNSUPPORTED_MARK.strip())]

    def unsupported(self) -> list[str]:
        return [s for s in self.own_sentences() if not judged_supported(s, self.passages)]


def load_cases(path: Path = QUESTIONS) -> list[AnswerCase]:
    return [AnswerCase(**row) for row in read_rows(path)]


def documents_in_scope() -> list[Path]:
    return [*sorted(ANSWERS.glob("*.md")), *(DATA / name for name in DISTRACTORS)]


def judged_supported(sentence: str, passages: list[tuple[int, str]]) -> bool:
    """The benchmark's judge, stricter than the checks it measures: every number written
    in the passages, and `JUDGE_SHARE` of the content words in one window of sentences."""
    from storage.documents.evidence import sentence_units

    texts = [text for _, text in passages]
    if not numbers(sentence) <= set().union(set(), *(numbers(text) for text in texts)):
        return False
    own = stems(sentence)
    for text in texts:
        units = [stems(unit.text) for unit in sentence_units(text)] or [stems(text)]
        for start in range(max(1, len(units) - WINDOW + 1)):
            if overlap(own, set().union(*units[start : start + WINDOW])) >= JUDGE_SHARE:
                return True
    return False


async def ask(agent: Agent, case: AnswerCase, thread: str, mode: DocumentAnswers) -> Result:
    settings = TurnSettings(
        system_prompt="You are a helpful assistant in a community chat. Be brief.",
        sampling={"temperature": 0.0, "max_tokens": 256, "seed": 1},
        tools=TOOLS,
        document_scope=SCOPE,
        document_answers=mode,
    )
    started = time.perf_counter()
    parts = [
        event.text
        async for event in agent.stream_reply(thread, case.question, settings)
        if isinstance(event, TextDelta)
    ]
    seconds = time.perf_counter() - started
    results = [
        message
        for message in await agent.history(thread)
        if isinstance(message, ToolMessage) and message.name == "search_documents"
    ]
    passages = parse_passages(results[-1].text) if results else []
    return Result(case, "".join(parts), seconds, bool(results), passages)


async def as_marked(embedder: Embedder, result: Result) -> Result:
    """`result` (of `off`) as `mark` shows it: the same generation, displayed marked."""
    if not result.routed:
        return result
    raw = result.shown.split(EVIDENCE_HEADING, 1)[0]
    shown = await shown_answer(embedder, result.case.question, raw, result.passages, "mark")
    return Result(result.case, shown, result.seconds, True, result.passages)


def row(mode: str, results: list[Result]) -> str:
    hits = sum(result.hit for result in results)
    routed = sum(result.routed for result in results)
    unsupported = [len(result.unsupported()) for result in results]
    times = sorted(result.seconds for result in results)
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    n = len(results)
    return (
        f"| {mode} | {hits}/{n} ({100 * hits / n:.0f}%) | {routed}/{n} | "
        f"{sum(unsupported)} in {sum(1 for u in unsupported if u)} answers | "
        f"{statistics.median(times):.1f} / {p90:.1f} |"
    )


async def dump(embedder: Embedder, results: list[Result], path: Path) -> None:
    """Every sentence the model wrote (in `off`), with each measure, one JSON a line."""
    with path.open("w", encoding="utf-8") as out:
        for result in results:
            if not result.routed:
                continue
            raw = result.shown.split(EVIDENCE_HEADING, 1)[0]
            texts = [text for _, text in result.passages]
            for checked in await check_sentences(embedder, raw, texts, result.case.question):
                out.write(
                    json.dumps(
                        {
                            "question": result.case.question,
                            "sentence": checked.text,
                            "word_share": round(checked.word_share, 3),
                            "similarity": round(checked.similarity, 3),
                            "numbers_found": checked.numbers_found,
                            "supported": None,
                            "passages": texts,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


async def agreement(embedder: Embedder, rows: list[dict[str, Any]]) -> str:
    """How each support check agrees with hand labels: precision and recall of
    "supported", and the unsupported sentences each would show."""
    labelled = [row for row in rows if row.get("supported") is not None]
    lines = [
        f"{len(labelled)} labelled sentences, {sum(r['supported'] for r in labelled)} supported\n",
        "| check | precision | recall | unsupported shown |",
        "| --- | --- | --- | --- |",
    ]
    for check in get_args(SupportCheck):
        verdicts = []
        for row in labelled:
            sentence = row["sentence"].replace("\n", " ")
            [checked] = await check_sentences(
                embedder, sentence, row["passages"], row["question"], check
            ) or [None]
            verdicts.append(bool(checked and checked.supported))
        passed = [row for row, verdict in zip(labelled, verdicts, strict=True) if verdict]
        right = sum(row["supported"] for row in passed)
        total = sum(row["supported"] for row in labelled)
        precision = right / len(passed) if passed else 1.0
        recall = right / total if total else 1.0
        lines.append(f"| {check} | {precision:.2f} | {recall:.2f} | {len(passed) - right} |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=["strict", "off"], choices=["strict", "off"])
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--model", type=Path, default=None, help="GGUF file (default: SmolLM2)")
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--dump", type=Path, default=None, help="write the sentences here")
    parser.add_argument("--labels", type=Path, default=None, help="compare the checks only")
    args = parser.parse_args()

    from langgraph.checkpoint.memory import InMemorySaver

    from inference.chat_model import PoolChatModel
    from inference.client import InferenceClient
    from inference.embedded import EmbeddedWorker
    from inference.model_files import resolve_model_path
    from storage.documents import MiniLMEmbedder, RecentEmbeddings
    from storage.embedded_redis import EmbeddedRedis
    from storage.redis_conn import open_redis

    embedder = RecentEmbeddings(MiniLMEmbedder())
    if args.labels is not None:
        print(await agreement(embedder, read_rows(args.labels)))
        return
    cases = load_cases()[: args.limit or None]
    documents = GuideDocuments(embedder, documents_in_scope())
    model_path = resolve_model_path(args.model)
    results: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedRedis(Path(scratch) / "redis")
        server.start()
        try:
            redis = await open_redis(server.url)
            async with EmbeddedWorker(server.url, model_path, slots=1, ctx_per_slot=args.ctx):
                model = PoolChatModel(client=InferenceClient(redis))
                agent = Agent(
                    model,
                    InMemorySaver(),
                    search_backend=FixedSearch(),
                    document_search=documents,
                    embedder=embedder,
                )
                await agent.router.prepare()
                for mode in args.modes:
                    found = []
                    for index, case in enumerate(cases):
                        result = await ask(agent, case, f"{mode}-{index}", mode)
                        found.append(result)
                        # One line per answer as it comes, so a long run can be followed.
                        progress = {
                            "mode": mode,
                            "question": case.question,
                            "hit": result.hit,
                            "documents": result.routed,
                            "unsupported": result.unsupported(),
                            "seconds": round(result.seconds, 2),
                            "shown": result.shown,
                        }
                        print(json.dumps(progress, ensure_ascii=False), file=sys.stderr, flush=True)
                    results[mode] = found
            await redis.aclose()
        finally:
            server.stop()
    print(file=sys.stderr)
    if "off" in results:
        results["mark"] = [await as_marked(embedder, result) for result in results["off"]]
        if args.dump is not None:
            await dump(embedder, results["off"], args.dump)
    print(f"{len(cases)} questions, model: {model_path.name}, greedy, one at a time\n")
    print("| mode | hit | to documents | unsupported shown | s per answer (median / p90) |")
    print("| --- | --- | --- | --- | --- |")
    for mode, found in results.items():
        print(row(mode, found))
    misses = [r for r in results.get("strict", []) if not r.hit]
    for result in misses:
        print(f"\nmiss: {result.case.question}\n{result.shown[:400]}")


if __name__ == "__main__":
    asyncio.run(main())
