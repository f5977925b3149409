"""Which tool a message needs, decided without the chat model: the `router` mode.

A 135M model does not decide to search (`benchmarks/tool_eval.py`), so the agent decides
for it, in a few milliseconds on the CPU, from what the message says:

1. a calculation written out in it, or a word problem read whole
   (`agent_graph.arithmetic_intent`): the calculator; a word problem that cannot be
   read whole: none, and the model's answer is marked unchecked;
2. a request for the community's documents in so many words ("según nuestra guía"),
   or for a web search ("search the web for ..."): that tool;
3. the nearest labelled examples (`agent_graph.router_examples`) in MiniLM's sentence
   embedding space, with time-sensitive words ("today", "latest", "precio") counting
   for the web in a message that asks something (`agent_graph.router_cues`); a class
   must lead the next one by `margin` to decide;
4. the community's documents themselves: a question the classifier is sure is about
   the community goes to them when they hold any passage on it; one it is unsure of,
   when the best passage is at least `document_floor` similar to it and about as close
   as the nearest small talk (a time-sensitive question needs a clearly closer
   passage, or goes to the web).

Anything else unsure is none: a wrong search costs an answer about the wrong thing, no tool
costs only what the model knows. The router reads only the turn's own document scope
(given by the graph, never taken from the message), so no text can point it elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from agent_graph.arithmetic_intent import Calculation, find_calculation
from agent_graph.router_cues import (
    EXPLICIT_DOCUMENTS,
    TIME_CUES,
    asks_something,
    explicit_web,
    web_query,
)
from agent_graph.router_examples import EXAMPLES, RoutedTool
from agent_graph.tools.documents import DocumentSearch
from agent_graph.word_problems import looks_like_word_problem
from storage.documents.embedder import Embedder, Vectors

logger = logging.getLogger(__name__)

ToolName = Literal["calculator", "web_search", "search_documents", "none"]
Reason = Literal[
    "empty",
    "arithmetic",
    "unchecked_arithmetic",
    "explicit",
    "classifier",
    "time_cue",
    "documents",
    "unsure",
]

# The router reads the start of a message, as the search tools' queries are cut (their
# argument limit): a long message is classified by its first lines, the embedding costs
# what a short sentence costs, and the one text embedded serves the classifier, the
# document probe and the search itself (`storage.documents.RecentEmbeddings`).
MAX_QUERY_CHARS = 300
# How much a time-sensitive word in a question adds to the web's similarity.
TIME_CUE_BONUS = 0.08
# How much closer than small talk a passage must be to a time-sensitive question.
TIME_CUE_LEAD = 0.14
# A class's score is the mean similarity of its `NEIGHBOURS` nearest examples.
NEIGHBOURS = 3


@dataclass(frozen=True)
class Route:
    """The router's decision: a tool (or "none"), its arguments, and why."""

    tool: ToolName
    arguments: dict[str, str] = field(default_factory=dict)
    reason: Reason = "unsure"
    calculation: Calculation | None = None  # for the calculator: what was read

    @classmethod
    def none(cls, reason: Reason = "unsure") -> Route:
        return cls("none", reason=reason)


def routed_text(text: str) -> str:
    """What the router reads of a message (and searches for): its start, one line."""
    return " ".join(text.split())[:MAX_QUERY_CHARS]


class ExampleClassifier:
    """Nearest labelled examples in an embedding space; the examples are embedded once,
    on first use."""

    def __init__(
        self, embedder: Embedder, examples: dict[RoutedTool, tuple[str, ...]] = EXAMPLES
    ) -> None:
        self._embedder = embedder
        self._examples = examples
        self._vectors: Vectors | None = None
        self._labels: list[RoutedTool] = []
        self._lock = asyncio.Lock()

    async def prepared(self) -> Vectors:
        async with self._lock:
            if self._vectors is None:
                labels: list[RoutedTool] = []
                texts: list[str] = []
                for label, examples in self._examples.items():
                    labels += [label] * len(examples)
                    texts += examples
                self._vectors = await self._embedder.embed(texts)
                self._labels = labels
            return self._vectors

    async def scores(self, text: str) -> dict[RoutedTool, float]:
        """Each class's mean similarity of its nearest examples to `text`."""
        vectors = await self.prepared()
        query = (await self._embedder.embed([text]))[0]
        similarity = vectors @ query
        labels = np.array(self._labels)
        scores: dict[RoutedTool, float] = {}
        for label in self._examples:
            nearest = np.sort(similarity[labels == label])[::-1][:NEIGHBOURS]
            scores[label] = float(nearest.mean()) if nearest.size else 0.0
        return scores


class ToolRouter:
    """Decides the tool for one message. Without an embedder it uses rules only."""

    def __init__(
        self,
        embedder: Embedder | None = None,
        documents: DocumentSearch | None = None,
        *,
        margin: float = 0.03,
        document_floor: float = 0.35,
        document_lead: float = -0.04,
    ) -> None:
        self._embedder = embedder
        self._classifier = ExampleClassifier(embedder) if embedder is not None else None
        self._documents = documents
        self.margin = margin
        # Above the store's own floor (0.25): that one keeps passages worth showing for
        # a document question; this one must tell a document question from any other.
        self.document_floor = document_floor
        self.document_lead = document_lead

    async def route(self, message: str, offered: Collection[str], document_scope: str) -> Route:
        """The tool `message` needs, among `offered` (web search is named even when not
        offered, so the agent can say it could not search); never raises for any text."""
        text = routed_text(message)
        if not text:
            return Route.none("empty")
        if "calculator" in offered:
            calculation = find_calculation(message)
            if calculation is not None:
                arguments = {"expression": calculation.expression}
                return Route("calculator", arguments, "arithmetic", calculation)
            if looks_like_word_problem(message):
                # A number asked for that the calculator could not read whole: the
                # model answers, saying so; a web search would only find arithmetic.
                return Route.none("unchecked_arithmetic")
        documents = "search_documents" in offered and bool(document_scope)
        if documents and EXPLICIT_DOCUMENTS.search(text):
            return Route("search_documents", {"query": text}, "explicit")
        if explicit_web(text):
            return Route("web_search", {"query": routed_text(web_query(text))}, "explicit")
        cued = asks_something(text) and TIME_CUES.search(text) is not None
        if self._classifier is None:
            return self._web(text, "time_cue") if cued else Route.none()
        try:
            scores = await self._classifier.scores(text)
        except Exception:  # an embedder failure must not cost the answer: rules only
            logger.warning("the router's classifier failed; using rules only", exc_info=True)
            return self._web(text, "time_cue") if cued else Route.none()
        if cued:
            scores["web_search"] += TIME_CUE_BONUS
        ranked = sorted(scores, key=scores.__getitem__, reverse=True)
        best, runner_up = ranked[0], ranked[1]
        sure = scores[best] - scores[runner_up] >= self.margin
        if sure and best == "none":
            return Route.none("classifier")
        closest = await self._closest_passage(text, document_scope) if documents else None
        # A question about the community, where its documents hold anything on the
        # subject (else the model answers: there may be no documents at all).
        if sure and best == "search_documents" and closest is not None:
            return Route("search_documents", {"query": text}, "classifier")
        # The community's own documents answer first when a passage is close enough,
        # unless the question is about the present, which documents rarely are. Spanish
        # similarities run higher than English ones, so a fixed floor alone would either
        # let Spanish small talk in or keep English questions out: a passage must also
        # be about as close as the nearest small talk.
        lead = self.document_lead + (TIME_CUE_LEAD if cued else 0.0)
        if (
            closest is not None
            and closest >= self.document_floor
            and closest >= scores["none"] + lead
        ):
            return Route("search_documents", {"query": text}, "documents")
        if cued:
            return self._web(text, "time_cue")
        if sure and best == "web_search":
            return self._web(text, "classifier")
        return Route.none()

    @property
    def embedder(self) -> Embedder | None:
        return self._embedder

    async def prepare(self) -> None:
        """Load the embedder and embed the examples now, not on the first message."""
        if self._classifier is None:
            return
        try:
            await self._classifier.prepared()
        except Exception:  # the first message will try again, and say why if it fails
            logger.warning("could not prepare the tool router", exc_info=True)

    def _web(self, text: str, reason: Reason) -> Route:
        return Route("web_search", {"query": text}, reason)

    async def _closest_passage(self, text: str, scope: str) -> float | None:
        """The similarity of the scope's passage closest to `text`; None when the search
        finds none above the store's floor (or fails)."""
        if self._documents is None:
            return None
        try:
            passages = await self._documents.search(scope, text, 3)
        except Exception:  # the search tool reports store failures; here it is a "no"
            logger.warning("the router's document probe failed", exc_info=True)
            return None
        return max((passage.score for passage in passages), default=None)
