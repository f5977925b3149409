"""Recursive chunking: split on paragraphs, then lines, sentences, words; merge back up.

Chunks are about `size` characters so each one is a focused passage to cite and fits the
embedding model's 256 tokens. Neighbouring chunks share up to `overlap` characters of
whole pieces so a sentence cut by a boundary is still found whole in one of them.
Boundaries fall only on whitespace: a word longer than `size` becomes a chunk of its own
rather than being cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Coarsest first. Each keeps its separator at the end of the piece before it, so the
# pieces concatenate back to the text exactly and offsets stay true.
_SEPARATORS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?<=\n)\s*\n"),  # blank line: paragraphs
    re.compile(r"(?<=\n)"),  # line
    re.compile(r"(?<=[.!?…;:])\s+"),  # sentence (and clause) ends
    re.compile(r"(?<=\s)(?=\S)"),  # between words
)


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int  # offset of the chunk's first character in the document text


def _split(text: str, size: int, level: int) -> list[str]:
    """Pieces of `text`, each at most `size` long unless it is a single word."""
    if len(text) <= size or level == len(_SEPARATORS):
        return [text]
    pieces: list[str] = []
    position = 0
    for match in _SEPARATORS[level].finditer(text):
        if match.end() > position:
            pieces.append(text[position : match.end()])
            position = match.end()
    pieces.append(text[position:])
    out: list[str] = []
    for piece in pieces:
        if piece:
            out.extend(_split(piece, size, level + 1) if len(piece) > size else [piece])
    return out


def chunk_text(text: str, size: int = 500, overlap: int = 100) -> list[Chunk]:
    """Split `text` into chunks of about `size` characters, sharing up to `overlap`."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError("chunk size must be positive and overlap in [0, size)")
    pieces = _split(text, size, 0)
    chunks: list[Chunk] = []
    window: list[tuple[int, str]] = []  # (offset, piece) of the chunk being built
    length = 0
    offset = 0

    def emit() -> None:
        body = "".join(piece for _, piece in window)
        stripped = body.strip()
        if stripped:
            lead = len(body) - len(body.lstrip())
            chunks.append(Chunk(stripped, window[0][0] + lead))

    for piece in pieces:
        if window and length + len(piece) > size:
            emit()
            # Keep the tail of the chunk just emitted, whole pieces only, as the overlap.
            while window and (length > overlap or length + len(piece) > size):
                length -= len(window.pop(0)[1])
        window.append((offset, piece))
        length += len(piece)
        offset += len(piece)
    # The last window may hold only overlap already emitted; emit it only if it is new.
    last_end = chunks[-1].start + len(chunks[-1].text) if chunks else -1
    if window and window[-1][0] + len(window[-1][1].rstrip()) > last_end:
        emit()
    return chunks
