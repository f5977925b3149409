"""Real sentence embeddings for the retrieval benchmark, from text already on this machine.

Random vectors have no structure, which makes them the hardest case for an HNSW index;
sentence embeddings cluster by topic. To measure recall on real embeddings without
downloading a data set, this harvests English sentences from the docstrings of the
Python standard library and the installed packages (a fixed, sorted walk, so the same
environment gives the same sentences), and embeds them with the bundled
all-MiniLM-L6-v2. Embedding 100k sentences takes a while on a CPU, so the vectors are
cached under ~/.cache/commons-bot-bench, keyed by count.

    python benchmarks/text_vectors.py --count 100200   # embed (and cache) ahead of time
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.documents import MiniLMEmbedder  # noqa: E402

CACHE_DIR = Path.home() / ".cache" / "commons-bot-bench"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _docstrings(path: Path) -> Iterator[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="ignore"))
    except (SyntaxError, ValueError, OSError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            text = ast.get_docstring(node)
            if text:
                yield text


def harvest_sentences(count: int) -> list[str]:
    """`count` distinct prose sentences (40-300 characters, 7+ words), in a fixed order."""
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    seen: dict[str, None] = {}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            for text in _docstrings(path):
                for sentence in _SENTENCE_END.split(" ".join(text.split())):
                    prose = sentence[:1].isupper() and sentence.count(" ") >= 6
                    if prose and 40 <= len(sentence) <= 300:
                        seen.setdefault(sentence)
                if len(seen) >= count:
                    return list(seen)[:count]
    raise SystemExit(f"only {len(seen)} sentences found on this machine; ask for fewer")


def sentence_vectors(count: int, *, progress: bool = True) -> np.ndarray:
    """Unit vectors of the first `count` harvested sentences (cached)."""
    embedder = MiniLMEmbedder(batch_size=64)
    cache = CACHE_DIR / f"docstrings-{count}-{embedder.model_name.replace('/', '_')}.npy"
    if cache.exists():
        return np.load(cache)
    sentences = harvest_sentences(count)
    parts, started = [], time.perf_counter()
    step = 2048
    for start in range(0, count, step):
        parts.append(embedder.embed_sync(sentences[start : start + step]))
        if progress:
            done = min(count, start + step)
            rate = done / (time.perf_counter() - started)
            print(f"embedded {done}/{count} ({rate:.0f}/s)", file=sys.stderr, flush=True)
    vectors = np.concatenate(parts).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_200)
    args = parser.parse_args()
    print(sentence_vectors(args.count).shape)


if __name__ == "__main__":
    main()
