"""Cut long chat replies into messages that fit a platform's length limit.

Discord rejects messages over 2000 characters and Telegram over 4096, but a model happily
writes longer answers. Cutting at a fixed width would break words and sentences and, worst,
Markdown code blocks: a piece that opens a ``` fence and never closes it renders as garbage,
and the next piece shows code as prose.

The work is two pure steps, so each can be tested on its own:

* `split_segments` chooses where to cut. The segments concatenate back to the original text
  exactly, so nothing is lost or duplicated.
* `render_pieces` turns segments into sendable messages: it closes a code block at the end
  of a piece and re-opens it (with its info string, e.g. ```python) at the start of the next.

`split_segments` budgets for that fence overhead, so every rendered piece fits the limit.
A fence is any line that starts with ``` after at most three spaces; each one opens or
closes a block (longer or nested fences are not told apart). Info strings longer than ten
characters are shortened to their first word, or dropped, when a block is re-opened, so the
overhead stays small enough for any limit of at least `MIN_LIMIT`.
"""

from __future__ import annotations

import bisect
import re

MIN_LIMIT = 20
_FENCE = re.compile(r" {0,3}```")  # matched at the start of a line
_FENCE_INFO = re.compile(r" {0,3}`+(.*)")
_MAX_INFO = 10
_CLOSE = "\n```"

# Boundary kinds, strongest first.
_PARAGRAPH, _LINE, _SENTENCE, _WORD = range(4)


def split_segments(text: str, limit: int) -> list[str]:
    """Cut `text` into consecutive segments whose concatenation is exactly `text`, such that
    each segment, once rendered (see render_pieces), is at most `limit` characters.

    Raises ValueError if `limit` is below 20 (`MIN_LIMIT`): a re-opened code block needs up
    to 18 characters of fence lines, and each piece must still carry some content.
    """
    if limit < MIN_LIMIT:
        raise ValueError(
            f"limit must be at least {MIN_LIMIT} characters (room for code-fence lines "
            f"plus some text), got {limit}"
        )
    fences = _Fences(text)
    segments: list[str] = []
    start = 0
    while start < len(text):
        end = _next_cut(text, start, limit, fences)
        segments.append(text[start:end])
        start = end
    return segments


def render_pieces(segments: list[str]) -> list[str]:
    """Turn segments into sendable messages: a segment that starts inside a ``` code block gets
    the fence line re-opened at its start (same info string, e.g. ```python), and a segment that
    ends inside a code block gets a closing ``` appended, so every piece has balanced fences."""
    fences = _Fences("".join(segments))
    pieces: list[str] = []
    position = 0
    for segment in segments:
        pieces.append(_render(segment, fences.reopen_line(position)))
        position += len(segment)
    return pieces


def split_message(text: str, limit: int) -> list[str]:
    """render_pieces(split_segments(text, limit)), dropping pieces that are only whitespace."""
    return [piece for piece in render_pieces(split_segments(text, limit)) if piece.strip()]


class _Fences:
    """The fence lines of one text, answering "is position p inside a code block?"."""

    def __init__(self, text: str) -> None:
        self.starts: list[int] = []  # offset of each fence line
        self.ends: list[int] = []  # offset of its "\n" (or the end of the text)
        self.infos: list[str] = []  # info string to re-open the block with
        offset = 0
        for line in text.split("\n"):
            if _FENCE.match(line):
                self.starts.append(offset)
                self.ends.append(offset + len(line))
                self.infos.append(_reopen_info(line))
            offset += len(line) + 1

    def _count_before(self, position: int) -> int:
        """How many fence lines start before `position` (a cut point between characters)."""
        return bisect.bisect_left(self.starts, position)

    def inside(self, position: int) -> bool:
        return self._count_before(position) % 2 == 1

    def reopen_line(self, position: int) -> str:
        """The line that re-opens the block `position` is in, or "" outside code blocks."""
        count = self._count_before(position)
        return "```" + self.infos[count - 1] if count % 2 == 1 else ""

    def in_fence_line(self, position: int) -> bool:
        """True for cut points within a fence line (after its first character)."""
        count = self._count_before(position)
        return count > 0 and position <= self.ends[count - 1]

    def next_to_fence(self, position: int) -> bool:
        """True right after an opening fence line or right before a closing one: a cut there
        would leave an empty code block in one of the pieces."""
        count = self._count_before(position)
        if count % 2 == 0:
            return False
        just_opened = position == self.ends[count - 1] + 1
        before_close = count < len(self.starts) and self.starts[count] == position
        return just_opened or before_close


def _reopen_info(fence_line: str) -> str:
    match = _FENCE_INFO.match(fence_line)
    info = match.group(1).strip() if match else ""
    if len(info) > _MAX_INFO:
        info = info.split()[0]
    return info if len(info) <= _MAX_INFO else ""


def _render(segment: str, reopen: str) -> str:
    piece = f"{reopen}\n{segment}" if reopen else segment
    # Count the fence lines of the piece itself, not of the original text: then the piece is
    # balanced even when a forced cut lands next to stray backticks.
    fence_lines = sum(1 for line in piece.split("\n") if _FENCE.match(line))
    if fence_lines % 2 == 1:
        piece += "```" if piece.endswith("\n") else _CLOSE
    return piece


def _next_cut(text: str, start: int, limit: int, fences: _Fences) -> int:
    reopen = fences.reopen_line(start)
    head = len(reopen) + 1 if reopen else 0
    if len(text) - start <= limit and len(_render(text[start:], reopen)) <= limit:
        return len(text)
    end = _choose_cut(text, start, min(len(text), start + limit - head), fences)
    if len(_render(text[start:end], reopen)) <= limit:
        return end
    # The piece ends inside a code block: cut again, leaving room for the closing fence.
    # limit >= MIN_LIMIT keeps this window at least two characters wide.
    return _choose_cut(text, start, min(len(text), start + limit - head - len(_CLOSE)), fences)


def _choose_cut(text: str, start: int, stop: int, fences: _Fences) -> int:
    """Pick a cut point in (start, stop].

    Rule: take the strongest boundary kind (paragraph, line, sentence, word) whose latest
    occurrence lies in the last half of the window; if no boundary lies there, the strongest
    kind anywhere. So a paragraph break is preferred unless it would leave a piece less than
    half full while a weaker boundary gives a fuller one. Without any boundary (a word longer
    than the window), cut as late as possible.
    """
    half = start + (stop - start) / 2
    latest: dict[int, int] = {}  # kind -> latest cut point of that kind
    fallback: int | None = None
    for position in range(stop, start, -1):
        if position < half and latest and min(latest.values()) >= half:
            break  # the last half has a boundary; earlier ones cannot win
        if not _allowed(text, position, fences):
            continue
        if fallback is None:
            fallback = position
        kind = _boundary_kind(text, position, fences)
        if kind is not None and kind not in latest:
            latest[kind] = position
    if latest:
        return latest[min(latest)]
    return fallback if fallback is not None else stop


def _allowed(text: str, position: int, fences: _Fences) -> bool:
    """A cut must not split a fence line, nor start a piece with text that looks like one."""
    if fences.in_fence_line(position):
        return False
    return text[position - 1] == "\n" or not _FENCE.match(text, position)


def _boundary_kind(text: str, position: int, fences: _Fences) -> int | None:
    """The kind of boundary a cut at `position` (after the separator) would follow, if any."""
    previous = text[position - 1]
    in_code = fences.inside(position)
    if previous == "\n":
        if in_code and fences.next_to_fence(position):
            return None
        if not in_code and position >= 2 and text[position - 2] == "\n":
            return _PARAGRAPH
        return _LINE
    if not previous.isspace() or (position < len(text) and text[position].isspace()):
        return None  # only cut at the end of a run of spaces
    run_start = position - 1
    while run_start > 0 and text[run_start - 1].isspace() and text[run_start - 1] != "\n":
        run_start -= 1
    if not in_code and run_start > 0 and text[run_start - 1] in ".!?":
        return _SENTENCE
    return _WORD
