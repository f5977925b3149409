"""The model's answer from a result the agent fetched, streamed with a guard, and what the
tool found shown under it.

A small model asked to answer from search results often writes a tool call as text
instead (`{"name": "web_search", "arguments": ...}`): it saw calls in its training, and
nothing stops it. Streamed as it comes, that JSON would reach the person as the answer.
So the answer's tokens go through `CallGuard`: text that starts like a JSON object is held
back until the answer ends, then dropped if it is a call; any other answer streams as
usual. Under the answer, `web_sources` lists the results' titles and links, so the person
always sees what the search found, whatever the model made of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from agent_graph.tools.web_search import SearchResult, parse_results

_CALL_KEYS = ("name", "arguments", "parameters", "tool", "query")


class CallGuard:
    """Passes an answer's text on as it streams, unless it opens like a JSON object: that
    is held until `finish`, which drops it when it is a tool call written as text."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._held = ""
        self._passing = False
        self.text = ""  # what was passed on

    def feed(self, text: str) -> None:
        if self._passing:
            self._pass(text)
            return
        self._held += text
        if _opening(self._held) == "text":
            self._passing = True
            held, self._held = self._held, ""
            self._pass(held)

    def finish(self) -> str:
        """The answer as passed on ("" when it was a call written as text)."""
        if self._held and not looks_like_call(self._held):
            self._pass(self._held)
        self._held = ""
        return self.text

    def _pass(self, text: str) -> None:
        self.text += text
        self._emit(text)


def _opening(text: str) -> str:
    """How an answer opens: "json" (an object or list, maybe in a ```json fence), "text",
    or "" while too little has come to tell."""
    start = text.lstrip()
    if start.startswith("`"):
        start = start.lstrip("`")
        word = start.split("\n", 1)[0].strip().lower()
        if "\n" not in start and "json".startswith(word):
            return ""  # still the fence line
        start = start.lstrip()[len(word) :].lstrip() if word == "json" else start.lstrip()
    if not start:
        return ""
    return "json" if start[0] in "{[" else "text"


def looks_like_call(text: str) -> bool:
    """True for a JSON object (or list of them) naming a tool or its arguments."""
    stripped = text.strip().strip("`").removeprefix("json").strip()
    try:
        value = json.loads(stripped)
    except ValueError:
        # Cut off by max_tokens, most likely: judge by how it opens.
        head = stripped[:80]
        return head.startswith(("{", "[")) and any(f'"{key}"' in head for key in _CALL_KEYS)
    objects = value if isinstance(value, list) else [value]
    return bool(objects) and all(
        isinstance(item, dict) and any(key in item for key in _CALL_KEYS) for item in objects
    )


def web_sources(result_text: str) -> str:
    """Under an answer from a web search: the results' titles and links ("" for none)."""
    results = parse_results(result_text)
    if not results:
        return ""
    lines = [_source_line(number, result) for number, result in enumerate(results, start=1)]
    return "\n\nSources:\n" + "\n".join(lines)


def web_digest(result_text: str) -> str:
    """What the search found, in its own words: the answer when the model gave none."""
    results = parse_results(result_text)
    lines = [
        f"{_source_line(number, result)}\n   {result.snippet}"
        for number, result in enumerate(results, start=1)
    ]
    return "The web search found:\n" + "\n".join(lines) if lines else ""


def _source_line(number: int, result: SearchResult) -> str:
    title = result.title or result.url
    return f"[{number}] {title} <{result.url}>" if result.url else f"[{number}] {title}"
