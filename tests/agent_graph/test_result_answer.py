"""The guard on answers written from a tool result, and the sources shown under them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent_graph.result_answer import CallGuard, looks_like_call, web_digest, web_sources
from agent_graph.tools.web_search import SearchResult, format_results, parse_results


def streamed(pieces: list[str]) -> tuple[list[str], str]:
    shown: list[str] = []
    guard = CallGuard(shown.append)
    for piece in pieces:
        guard.feed(piece)
    return shown, guard.finish()


def test_an_ordinary_answer_streams_as_it_comes() -> None:
    shown, answer = streamed(["  The ", "answer ", "is 4."])
    assert shown == ["  The ", "answer ", "is 4."] and answer == "  The answer is 4."


def test_a_call_written_as_text_is_held_and_dropped() -> None:
    for call in (
        ['{"name": "web_search", ', '"arguments": {"query": "x"}}'],
        ['```json\n{"name": "calc', 'ulator", "parameters": {}}\n```'],
        ['[{"tool": "web_search", "query": "x"}]'],
        ['{"name": "web_search", "arguments": {"query": "cut off by max_tok'],
    ):
        shown, answer = streamed(call)
        assert shown == [] and answer == "", call


def test_json_that_is_not_a_call_is_shown_at_the_end() -> None:
    shown, answer = streamed(['{"temperature": ', "21}"])
    assert answer == '{"temperature": 21}' and shown == [answer]
    assert not looks_like_call("[1, 2, 3]")


@given(st.lists(st.text(min_size=1, max_size=8), max_size=12))
def test_nothing_but_a_call_is_ever_lost(pieces: list[str]) -> None:
    shown, answer = streamed(pieces)
    whole = "".join(pieces)
    assert "".join(shown) == answer
    assert answer == whole or (answer == "" and looks_like_call(whole))


def test_sources_and_digest_come_from_the_results_as_formatted() -> None:
    results = [
        SearchResult("Chile", "https://news.example/cl", "The president is X."),
        SearchResult("", "https://other.example", "More."),
    ]
    text = format_results(results)
    assert parse_results(text) == [
        SearchResult("Chile", "https://news.example/cl", "The president is X."),
        SearchResult("https://other.example", "https://other.example", "More."),
    ]
    assert web_sources(text) == (
        "\n\nSources:\n[1] Chile <https://news.example/cl>\n"
        "[2] https://other.example <https://other.example>"
    )
    assert web_digest(text).startswith("The web search found:\n[1] Chile")
    assert web_sources("No web results for 'x'. Try other words.") == ""
