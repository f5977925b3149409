"""Embedding speed and agreement: the ONNX Runtime pass, the numpy pass and, where it is
installed, sentence-transformers on PyTorch, on the same chunks in one run.

The chunks are the benchmark documents of `benchmarks/data/` cut as the store cuts them
(500 characters, 100 overlap), repeated to `--chunks`. Each embedder embeds them all
`--runs` times (after one warm-up batch); the table gives the median chunks/s, the ratio
to sentence-transformers (or to numpy when it is absent), and the lowest cosine between
each embedder's vector and the reference's for the same chunk.

PyTorch stays out of the project's install: run this with an interpreter that has both
the project's requirements and sentence-transformers (see docs/benchmarks.md) to get
the sentence-transformers row; without it the row says so.

    python benchmarks/embedders.py [--chunks 400] [--runs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.documents.chunking import chunk_text  # noqa: E402
from storage.documents.minilm import MiniLMEmbedder, bundled_model_dir  # noqa: E402

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]


def benchmark_chunks(count: int) -> list[str]:
    texts = sorted((ROOT / "benchmarks" / "data").rglob("*.md"))
    chunks = [
        chunk.text
        for path in texts
        for chunk in chunk_text(path.read_text(encoding="utf-8"), 500, 100)
    ]
    return (chunks * (count // max(1, len(chunks)) + 1))[:count]


def sentence_transformers_embed(threads: int) -> Embed | None:
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    torch.set_num_threads(threads)
    model = SentenceTransformer(str(bundled_model_dir()), device="cpu")

    def embed(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        vectors = model.encode(list(texts), batch_size=32, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)

    return embed


def timed(embed: Embed, chunks: list[str], runs: int) -> tuple[float, npt.NDArray[np.float32]]:
    embed(chunks[:32])  # warm-up: first-call allocations and graph set-up
    rates = []
    vectors = np.zeros((0, 384), dtype=np.float32)
    for _ in range(runs):
        started = time.perf_counter()
        vectors = embed(chunks)
        rates.append(len(chunks) / (time.perf_counter() - started))
    return statistics.median(rates), vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    chunks = benchmark_chunks(args.chunks)
    embedders: dict[str, Embed] = {}
    reference = sentence_transformers_embed(args.threads)
    if reference is not None:
        embedders["sentence-transformers (torch)"] = reference
    onnx = MiniLMEmbedder(backend="onnx", threads=args.threads)
    embedders[f"ONNX Runtime ({onnx.backend})"] = onnx.embed_sync
    embedders["numpy"] = MiniLMEmbedder(backend="numpy").embed_sync
    results = {name: timed(embed, chunks, args.runs) for name, embed in embedders.items()}
    base_name = next(iter(results))
    base_rate, base_vectors = results[base_name]
    print(f"{len(chunks)} chunks of up to 500 characters, {args.threads} threads, ", end="")
    print(f"median of {args.runs} runs; ratio and cosine against {base_name}\n")
    if reference is None:
        print("(sentence-transformers is not installed in this interpreter)\n")
    print("| embedder | chunks/s | ratio | lowest cosine |")
    print("| --- | --- | --- | --- |")
    for name, (rate, vectors) in results.items():
        cosine = float((vectors * base_vectors).sum(axis=1).min())
        print(f"| {name} | {rate:.1f} | {rate / base_rate:.2f} | {cosine:.6f} |")


if __name__ == "__main__":
    main()
