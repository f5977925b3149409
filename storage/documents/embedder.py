"""The `Embedder` seam: text in, unit vectors out, with the model's name and size.

The store records which model made its vectors and refuses another one, so the name
must change whenever the vectors would (another model, another pooling).
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Embedder(ABC):
    """Turns texts into L2-normalised vectors of `dimensions` floats.

    Implementations do the work in `embed_sync` (blocking: CPU or GPU bound); callers on
    the event loop use `embed`, which runs it in a thread.
    """

    model_name: str
    dimensions: int
    batch_size: int = 32

    @abstractmethod
    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        """Return an array of shape (len(texts), dimensions), each row of length 1."""

    @abstractmethod
    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text takes in this model (after truncation)."""

    async def embed(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> Vectors:
        """Embed in batches off the event loop; `progress(n)` after each batch of n texts."""
        parts: list[Vectors] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            parts.append(await asyncio.to_thread(self.embed_sync, batch))
            if progress is not None:
                progress(len(batch))
        if not parts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.concatenate(parts)


class LazyEmbedder(Embedder):
    """Loads the real embedder on first use, off the event loop.

    Most chat sessions never touch documents; loading the model at start-up would make
    every one of them pay for it.
    """

    def __init__(self, load: Callable[[], Embedder], model_name: str, dimensions: int) -> None:
        self._load = load
        self.model_name = model_name
        self.dimensions = dimensions
        self._loaded: Embedder | None = None
        self._lock = threading.Lock()

    def _embedder(self) -> Embedder:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
            return self._loaded

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        return self._embedder().embed_sync(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._embedder().count_tokens(texts)


class RecentEmbeddings(Embedder):
    """Remembers the vectors of the last `size` single texts embedded.

    A chat message is embedded by the tool router, then by the document store when the
    router probes the documents, then again when the search tool runs: one computation
    instead of three. Batches (ingestion) pass straight through.
    """

    def __init__(self, inner: Embedder, size: int = 64) -> None:
        self._inner = inner
        self.model_name = inner.model_name
        self.dimensions = inner.dimensions
        self.batch_size = inner.batch_size
        self._size = size
        self._recent: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        if len(texts) != 1:
            return self._inner.embed_sync(texts)
        [text] = texts
        with self._lock:
            known = self._recent.get(text)
            if known is not None:
                self._recent.move_to_end(text)
                return known.copy()
        vectors = self._inner.embed_sync(texts)
        with self._lock:
            self._recent[text] = vectors.copy()
            while len(self._recent) > self._size:
                self._recent.popitem(last=False)
        return vectors

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._inner.count_tokens(texts)

    def clear(self) -> None:
        with self._lock:
            self._recent.clear()
