"""Document retrieval quality: hit@k of the passage holding the answer, English and Spanish.

The two guides in `benchmarks/data/` (an English makers' handbook, a Spanish astronomy
club guide), and two others on the same kinds of subject (a chess club's rules, a
hiking club's "normas") that answer none of the questions but compete for the top
ranks, are added to a real PostgreSQL + pgvector store with the MiniLM embedder;
each labelled question of `benchmarks/data/retrieval_questions.jsonl` is a hit when one
of the top k passages contains its answer text. Compared: full-text search in English
only ("english", how the store indexed everything before) and in each document's own
language ("english+spanish", the default). Runs on its own embedded PostgreSQL.

    python benchmarks/retrieval_eval.py [--k 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.tool_eval_data import DATA, GUIDES  # noqa: E402
from storage.documents import MiniLMEmbedder, PgDocumentStore, SourceDocument  # noqa: E402
from storage.embedded_postgres import EmbeddedPostgres  # noqa: E402
from storage.postgres import open_pool  # noqa: E402

QUESTIONS = DATA / "retrieval_questions.jsonl"
# Fees, rules, outings and newsletters too: the right guide must outrank them.
DISTRACTORS = ("chess_club_rules.md", "club_senderismo.md")
VARIANTS: dict[str, tuple[str, ...]] = {
    "english": ("english",),
    "english+spanish": ("english", "spanish"),
}


async def hits(store: PgDocumentStore, scope: str, k: int) -> dict[str, list[bool]]:
    found: dict[str, list[bool]] = {"en": [], "es": []}
    for line in QUESTIONS.read_text(encoding="utf-8").splitlines():
        labelled = json.loads(line)
        passages = await store.search(scope, labelled["question"], k=k)
        found[labelled["language"]].append(any(labelled["answer"] in p.text for p in passages))
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=3)
    args = parser.parse_args()
    embedder = MiniLMEmbedder()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedPostgres(Path(scratch) / "postgres")
        server.start()
        try:
            pool = await open_pool(server.url)
            for name, languages in VARIANTS.items():
                store = PgDocumentStore(pool, embedder, languages=languages)
                scope = f"bench:{name}"
                for guide in (*GUIDES, *DISTRACTORS):
                    text = (DATA / guide).read_text(encoding="utf-8")
                    title = text.splitlines()[0].lstrip("# ")
                    await store.add(scope, SourceDocument(title, guide, "text/markdown", text))
                found = await hits(store, scope, args.k)
                every = found["en"] + found["es"]
                rows.append(
                    f"| {name} | "
                    + " | ".join(
                        f"{100 * sum(f) / len(f):.0f}% ({sum(f)}/{len(f)})"
                        for f in (every, found["en"], found["es"])
                    )
                    + " |"
                )
            await pool.close()
        finally:
            server.stop()
    print(f"hit@{args.k}: the passage holding the answer among the top {args.k}\n")
    print("| full-text search | all | en | es |\n| --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main())
