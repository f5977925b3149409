"""`RecentEmbeddings`: one message embedded once, however many parts ask for it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from storage.documents import Embedder, MiniLMEmbedder, RecentEmbeddings
from storage.documents.embedder import Vectors


class Counting(Embedder):
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: MiniLMEmbedder) -> None:
        self._inner = inner
        self.model_name = inner.model_name
        self.dimensions = inner.dimensions
        self.texts: list[str] = []

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        self.texts += texts
        return self._inner.embed_sync(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._inner.count_tokens(texts)


async def test_a_recent_text_is_not_embedded_again(embedder: MiniLMEmbedder) -> None:
    counting = Counting(embedder)
    recent = RecentEmbeddings(counting, size=2)
    first = await recent.embed(["who edits the newsletter?"])
    again = await recent.embed(["who edits the newsletter?"])
    assert np.array_equal(first, again) and counting.texts == ["who edits the newsletter?"]
    again[0, 0] = 42.0  # a caller changing its copy changes nothing remembered
    assert (await recent.embed(["who edits the newsletter?"]))[0, 0] == first[0, 0]


async def test_batches_pass_through_and_old_texts_are_forgotten(
    embedder: MiniLMEmbedder,
) -> None:
    counting = Counting(embedder)
    recent = RecentEmbeddings(counting, size=2)
    await recent.embed(["a b", "c d"])
    await recent.embed(["a b"])
    assert counting.texts == ["a b", "c d", "a b"]  # a batch is not remembered
    await recent.embed(["one"])
    await recent.embed(["two"])  # "a b" is now the oldest of three: forgotten
    await recent.embed(["a b"])
    assert counting.texts.count("a b") == 3
    assert recent.count_tokens(["a b"]) == embedder.count_tokens(["a b"])
