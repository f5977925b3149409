"""Tests for bot.splitter: property tests on invariants plus examples of where cuts land."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.splitter import MIN_LIMIT, render_pieces, split_message, split_segments

FENCE_LINE = re.compile(r" {0,3}```")
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda"]


def fence_lines(piece: str) -> int:
    return sum(1 for line in piece.split("\n") if FENCE_LINE.match(line))


# --- strategies -------------------------------------------------------------------------------

words = st.sampled_from(WORDS) | st.text(alphabet="abcxyz`.!?", min_size=1, max_size=12)
long_words = st.integers(min_value=30, max_value=700).map(lambda n: "w" * n)
infos = st.sampled_from(["", "python", "js", "typescript", "python title=demo.py", "x" * 40])
fence_indent = st.sampled_from(["", " ", "   "])
code_lines = st.lists(
    st.text(alphabet="abc ()=:\t`#", max_size=60) | long_words, min_size=0, max_size=15
)


@st.composite
def code_blocks(draw: st.DrawFn) -> str:
    opener = draw(fence_indent) + "```" + draw(infos)
    body = "\n".join(draw(code_lines))
    closer = draw(st.sampled_from(["\n```", "\n   ```", ""]))  # "" leaves the block unclosed
    return f"{opener}\n{body}{closer}"


separators = st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", "! ", "? ", "  ", "\n\n\n"])
tokens = words | long_words | separators | code_blocks() | st.just("``````") | st.just("```")
markdown_texts = st.lists(tokens, max_size=60).map("".join)
any_texts = markdown_texts | st.text(max_size=1500)
limits = st.integers(min_value=MIN_LIMIT, max_value=500)


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(text=any_texts, limit=limits)
def test_segments_rejoin_to_the_text(text: str, limit: int) -> None:
    segments = split_segments(text, limit)
    assert "".join(segments) == text
    assert all(segments), "no empty segments"


@settings(max_examples=400, deadline=None)
@given(text=any_texts, limit=limits)
def test_rendered_pieces_fit_and_have_balanced_fences(text: str, limit: int) -> None:
    pieces = render_pieces(split_segments(text, limit))
    for piece in pieces:
        assert len(piece) <= limit, piece
        assert fence_lines(piece) % 2 == 0, piece


@settings(max_examples=300, deadline=None)
@given(text=any_texts, limit=limits)
def test_split_message_has_no_blank_pieces(text: str, limit: int) -> None:
    pieces = split_message(text, limit)
    assert all(piece.strip() for piece in pieces)
    assert all(len(piece) <= limit for piece in pieces)
    expected = [p for p in render_pieces(split_segments(text, limit)) if p.strip()]
    assert pieces == expected


@settings(max_examples=200, deadline=None)
@given(text=markdown_texts, limit=limits)
def test_pieces_without_code_are_sent_verbatim(text: str, limit: int) -> None:
    text = text.replace("`", "'")
    segments = split_segments(text, limit)
    assert render_pieces(segments) == segments


# --- simple cases -----------------------------------------------------------------------------


def test_empty_text_gives_nothing() -> None:
    assert split_segments("", 2000) == []
    assert split_message("", 2000) == []


def test_short_text_is_one_piece() -> None:
    text = "Hello there!\n\n```python\nprint('hi')\n```\n"
    assert split_segments(text, 2000) == [text]
    assert split_message(text, 2000) == [text]


def test_whitespace_only_text_is_dropped_by_split_message() -> None:
    assert split_segments("  \n\n  ", 2000) == ["  \n\n  "]
    assert split_message("  \n\n  ", 2000) == []


def test_limit_too_small_raises() -> None:
    with pytest.raises(ValueError, match="at least 20"):
        split_segments("some text", 19)
    with pytest.raises(ValueError, match="at least 20"):
        split_message("", 5)
    assert split_message("x" * 45, 20) == ["x" * 20, "x" * 20, "x" * 5]


# --- where cuts land --------------------------------------------------------------------------


def sentences(count: int, start: int = 0) -> str:
    return "".join(f"Sentence number {i} says something useful. " for i in range(start, count))


def test_prefers_paragraph_break_over_later_weaker_boundaries() -> None:
    first = sentences(30)  # ~1300 characters: the break lies in the last half of the window
    second = "A line of text.\nAnother line here. " * 60
    segments = split_segments(first + "\n\n" + second, 2000)
    assert segments[0] == first + "\n\n"


def test_ignores_a_paragraph_break_that_would_leave_a_tiny_piece() -> None:
    text = "Short intro.\n\n" + sentences(100)
    segments = split_segments(text, 2000)
    assert len(segments[0]) > 1000
    assert segments[0].endswith("useful. ")
    assert segments[1].startswith("Sentence number")


def test_prefers_sentence_end_over_word_break() -> None:
    text = sentences(60)
    segments = split_segments(text, 500)
    assert len(segments) > 1
    for segment in segments[:-1]:
        assert segment.endswith("useful. ")
        assert len(segment) > 250


def test_prefers_word_break_over_hard_cut() -> None:
    text = " ".join(WORDS * 80)
    segments = split_segments(text, 300)
    assert len(segments) > 1
    for segment in segments:
        assert set(segment.split()) <= set(WORDS), "no word was cut in two"
    for segment in segments[:-1]:
        assert segment.endswith(" ")
        assert len(segment) > 280


def test_line_break_preferred_over_sentence() -> None:
    lines = "".join(f"Item {i}. It has two sentences. Really.\n" for i in range(100))
    segments = split_segments(lines, 400)
    for segment in segments[:-1]:
        assert segment.endswith("Really.\n")


def test_hard_cut_of_a_very_long_word() -> None:
    word = "x" * 5000
    assert [len(s) for s in split_segments(word, 2000)] == [2000, 2000, 1000]
    assert split_message(word, 2000) == ["x" * 2000, "x" * 2000, "x" * 1000]


def test_long_word_after_text_starts_a_new_piece_then_is_cut_hard() -> None:
    text = "see: " + "y" * 3000
    segments = split_segments(text, 2000)
    assert segments == ["see: ", "y" * 2000, "y" * 1000]


# --- code blocks ------------------------------------------------------------------------------


def test_long_code_block_is_closed_and_reopened_with_its_info_string() -> None:
    code = "".join(f"    result_{i} = compute(value_{i}, factor={i})\n" for i in range(80))
    text = f"Here is the script:\n\n```python\n{code}```\n\nThat is all."
    pieces = split_message(text, 500)
    assert len(pieces) >= 8
    assert pieces[0].startswith("Here is the script:\n\n```python\n")
    for piece in pieces:
        assert len(piece) <= 500
        assert fence_lines(piece) % 2 == 0
    for piece in pieces[:-1]:
        assert piece.endswith("\n```"), "every piece but the last closes the block"
    for piece in pieces[1:]:
        assert piece.startswith("```python\n"), "every later piece reopens with the info string"
    assert pieces[-1].endswith("```\n\nThat is all.")
    # Cuts fall between code lines: every line of the code survives whole in some piece.
    sent_lines = {line for piece in pieces for line in piece.split("\n")}
    assert set(code.splitlines()) <= sent_lines


def test_render_pieces_reopens_and_closes() -> None:
    segments = ["Intro\n```py\nline one\n", "line two\n```\nafter"]
    assert render_pieces(segments) == [
        "Intro\n```py\nline one\n```",
        "```py\nline two\n```\nafter",
    ]


def test_render_pieces_closes_mid_line_cut_on_its_own_line() -> None:
    assert render_pieces(["```js\nlet x", " = 1;\n```"]) == [
        "```js\nlet x\n```",
        "```js\n = 1;\n```",
    ]


def test_long_info_string_is_shortened_to_its_language() -> None:
    code = "print('hello world')\n" * 40
    pieces = split_message(f"```python title=demo.py\n{code}```", 200)
    assert pieces[0].startswith("```python title=demo.py\n")
    assert all(piece.startswith("```python\n") for piece in pieces[1:])


def test_unclosed_code_block_is_closed_in_every_piece() -> None:
    pieces = split_message("```\n" + "data line\n" * 100, 150)
    assert len(pieces) > 1
    for piece in pieces:
        assert piece.startswith("```\n")
        assert piece.endswith("\n```")
        assert len(piece) <= 150


def cut_points(segments: list[str]) -> list[int]:
    points, offset = [], 0
    for segment in segments[:-1]:
        offset += len(segment)
        points.append(offset)
    return points


def test_never_cuts_inside_a_fence_line() -> None:
    text = "a" * 15 + "\n```python\n" + "b = 1\n" * 10 + "```\n"
    opener = text.index("```python")
    for limit in range(MIN_LIMIT, 60):
        for point in cut_points(split_segments(text, limit)):
            assert not opener < point <= opener + len("```python"), (limit, point)


# --- realistic replies --------------------------------------------------------------------------

REPLY_SECTION = """\
## Step {n}: configure the worker pool

The worker pool keeps a fixed number of model processes alive. Each one loads the GGUF \
file once and then serves requests from a shared queue, so a burst of messages does not \
start new processes. If a worker crashes, the supervisor restarts it and retries the request.

- **workers**: how many processes to start (default 2)
- **context**: the context window in tokens; larger windows use more memory
- **timeout**: seconds before a request is abandoned and the user is told so

```python
from inference.pool import WorkerPool

async def main() -> None:
    pool = WorkerPool(model_path="models/smollm2.gguf", workers=2, context=4096)
    async with pool:
        reply = await pool.generate("Summarise the channel rules.", max_tokens=256)
        print(reply.text)
```

Why does this matter? Because a single process would serialise every request! Keep an eye \
on memory: each worker holds its own copy of the weights.

"""

REALISTIC_REPLY = "# Setting up the bot\n\n" + "".join(
    REPLY_SECTION.format(n=n) for n in range(1, 13)
)


@pytest.mark.parametrize("limit", [2000, 4096], ids=["discord", "telegram"])
def test_realistic_markdown_reply(limit: int) -> None:
    assert len(REALISTIC_REPLY) > 2 * limit
    segments = split_segments(REALISTIC_REPLY, limit)
    pieces = split_message(REALISTIC_REPLY, limit)
    assert "".join(segments) == REALISTIC_REPLY
    assert len(pieces) == len(segments)
    for piece in pieces:
        assert len(piece) <= limit
        assert fence_lines(piece) % 2 == 0
    for segment in segments[:-1]:
        assert len(segment) > limit // 2, "pieces are reasonably full"
        assert segment.endswith("\n"), "cuts fall at paragraph or line boundaries"
    assert len(pieces) <= 2 * len(REALISTIC_REPLY) // limit + 1
