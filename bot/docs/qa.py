"""Questions answered from a community's documents, and summaries of one document.

`ask` retrieves first and lets the model answer only from the numbered passages it is
shown; when retrieval finds nothing above the relevance floor the model is not asked at
all, so "the documents don't say" never depends on a small model admitting it. Answers
end with the sentences of the cited passages closest to the question (picked by the
embeddings, `storage.documents.evidence`: the source's own words, whatever the model
wrote) and the sources they cite, by document title and part.

`summarize` is a LangChain chain (prompt | model | parser). A text longer than the
model's context is summarised map-reduce: notes per part, then the summary of the
notes, in the requested language.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import BaseOutputParser, StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from storage.documents import DocumentStore, Passage
from storage.documents.chunking import chunk_text
from storage.documents.evidence import Quote, best_sentences, render_quotes

NOT_FOUND = "The documents here don't contain the answer to that."
# What the model is told to say when the passages do not answer; seeing it, `ask`
# replies NOT_FOUND instead of whatever else the model wrote around it.
NOT_FOUND_MARK = "NOT IN DOCUMENTS"
# Rough characters per token for English text; sizes prompts against the context.
CHARS_PER_TOKEN = 3

ASK_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "You answer questions using only the numbered passages below, never other "
            "knowledge. Cite the passages you use as [1], [2]. If the passages do not "
            f"contain the answer, reply only: {NOT_FOUND_MARK}\n\nPassages:\n{{passages}}",
        ),
        ("human", "{question}"),
    ]
)

MAP_PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Write short notes of the key facts in this part of a document."),
        ("human", "{text}"),
    ]
)

SUMMARY_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Summarise the text in {language}. Reply in exactly this form:\n"
            "TITLE: <a short title>\n"
            "POINTS:\n- <key point>\n(exactly {points} points)\n"
            "ABSTRACT: <two or three sentences>",
        ),
        ("human", "{text}"),
    ]
)


@dataclass(frozen=True)
class Answer:
    text: str
    passages: list[Passage] = field(default_factory=list)
    found: bool = False
    quotes: list[Quote] = field(default_factory=list)  # from the cited passages

    def cited(self) -> list[tuple[int, Passage]]:
        """The passages the answer cites as [n]; all of them when it cites none."""
        numbers = {int(n) for n in re.findall(r"\[(\d+)\]", self.text)}
        numbered = list(enumerate(self.passages, start=1))
        chosen = [(n, passage) for n, passage in numbered if n in numbers]
        return chosen or numbered

    def render(self) -> str:
        if not self.found:
            return self.text
        sources = "\n".join(
            f"[{n}] {passage.citation()} - {passage.source}" for n, passage in self.cited()
        )
        return f"{self.text}{render_quotes(self.quotes)}\n\nSources:\n{sources}"


def number_passages(passages: Sequence[Passage]) -> str:
    return "\n\n".join(
        f"[{n}] ({passage.citation()})\n{passage.text}" for n, passage in enumerate(passages, 1)
    )


async def ask(
    store: DocumentStore,
    model: BaseChatModel,
    scope: str,
    question: str,
    *,
    k: int = 5,
    sampling: dict[str, Any] | None = None,
) -> Answer:
    """Answer `question` from the scope's documents only."""
    passages = await store.search(scope, question, k=k)
    if not passages:
        return Answer(NOT_FOUND)
    chain = ASK_PROMPT | model.bind(**(sampling or {})) | StrOutputParser()
    text = await chain.ainvoke({"passages": number_passages(passages), "question": question})
    text = text.strip()
    if not text or NOT_FOUND_MARK.lower() in text.lower():
        return Answer(NOT_FOUND, passages)
    answer = Answer(text, passages, found=True)
    cited = [(number, passage.text) for number, passage in answer.cited()]
    quotes = await best_sentences(store.embedder, question, cited)
    return Answer(text, passages, found=True, quotes=quotes)


@dataclass(frozen=True)
class Summary:
    title: str
    points: list[str]
    abstract: str

    def render(self) -> str:
        points = "\n".join(f"- {point}" for point in self.points)
        return f"{self.title}\n\n{points}\n\n{self.abstract}".strip()


class SummaryParser(BaseOutputParser[Summary]):
    """Reads the TITLE/POINTS/ABSTRACT form leniently: small models drift from it."""

    def parse(self, text: str) -> Summary:
        title, abstract = "", ""
        points: list[str] = []
        section = ""
        for raw in text.strip().splitlines():
            line = raw.strip()
            label = re.match(
                r"^[*#\s]*(TITLE|(?:KEY\s+)?POINTS|ABSTRACT|SUMMARY)[*\s]*:[*\s]*(.*)$",
                line,
                re.IGNORECASE,
            )
            if label:
                section = label.group(1).split()[-1].upper()
                rest = label.group(2).strip()
                if section == "TITLE":
                    title = rest
                elif section in ("ABSTRACT", "SUMMARY"):
                    section, abstract = "ABSTRACT", rest
                elif rest:
                    points.append(rest)
                continue
            bullet = re.match(r"^(?:[-*•]|\d+[.)])\s+(.*)$", line)
            if bullet and section != "ABSTRACT":
                points.append(bullet.group(1).strip())
            elif not line:
                continue
            elif section == "ABSTRACT" or (title and section != "POINTS"):
                abstract = f"{abstract} {line}".strip()
            elif not title:
                title = line
        return Summary(title or "Summary", points, abstract)

    @property
    def _type(self) -> str:
        return "summary"


async def summarize(
    model: BaseChatModel,
    text: str,
    *,
    points: int = 5,
    language: str = "English",
    context_tokens: int = 4096,
    sampling: dict[str, Any] | None = None,
    parallel: int = 4,
) -> Summary:
    """A title, `points` key points and an abstract of `text`, in `language`."""
    bound = model.bind(**(sampling or {}))
    max_tokens = int((sampling or {}).get("max_tokens", 512))
    # What fits beside the instructions and the reply in one context.
    budget = max(500, (context_tokens - max_tokens - 200) * CHARS_PER_TOKEN)
    notes_chain = MAP_PROMPT | bound | StrOutputParser()
    gate = asyncio.Semaphore(parallel)

    async def notes(part: str) -> str:
        async with gate:
            return (await notes_chain.ainvoke({"text": part})).strip()

    while len(text) > budget:
        parts = [chunk.text for chunk in chunk_text(text, budget, 0)]
        reduced = "\n\n".join(await asyncio.gather(*(notes(part) for part in parts)))
        if len(reduced) >= len(text):
            # Notes longer than their source would never converge: cut instead.
            reduced = reduced[:budget]
        text = reduced
    chain = SUMMARY_PROMPT | bound | SummaryParser()
    return await chain.ainvoke({"text": text, "points": points, "language": language})
