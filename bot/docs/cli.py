"""`python -m bot docs ...`: add, list, remove, ask and summarize a community's documents.

add/list/remove need only PostgreSQL (embedded when BOT_DATABASE_URL is unset) and the
embedding model; ask and summarize also need the chat model, so they start the whole
app (Redis, worker) like `chat` does. The scope defaults to the terminal's community;
`--scope discord:12345` manages a Discord server's documents from the host.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from psycopg_pool import AsyncConnectionPool
from tqdm import tqdm

from bot.config import Settings
from bot.docs.service import DocsService
from bot.errors import InvalidRequest
from bot.platforms.terminal import terminal_scope
from bot.services import database_url
from storage.datadir import ensure_writable_dir
from storage.documents import (
    DocumentError,
    Ingestor,
    MiniLMEmbedder,
    PgDocumentStore,
    expand_sources,
)
from storage.postgres import open_pool

DEFAULT_SCOPE = terminal_scope("default").server_key


def add_docs_parser(subparsers: Any) -> None:
    """Add the `docs` command and its actions to the CLI's subparsers."""
    docs = subparsers.add_parser("docs", help="add, list, remove, ask and summarize documents")
    actions = docs.add_subparsers(dest="docs_command", metavar="ACTION", required=True)

    def with_scope(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument(
            "--scope",
            default=DEFAULT_SCOPE,
            help=f"the community whose documents these are (default: {DEFAULT_SCOPE})",
        )
        return parser

    add = with_scope(actions.add_parser("add", help="add files, folders or http(s) URLs"))
    add.add_argument("sources", nargs="+", metavar="PATH_OR_URL")
    with_scope(actions.add_parser("list", help="list the documents"))
    remove = with_scope(actions.add_parser("remove", help="remove a document and its passages"))
    remove.add_argument("id", type=int, metavar="ID")
    question = with_scope(actions.add_parser("ask", help="answer a question from the documents"))
    question.add_argument("question")
    question.add_argument("-k", type=int, default=5, help="passages to read (default: 5)")
    summary = with_scope(actions.add_parser("summarize", help="summarize a document or a URL"))
    summary.add_argument("target", metavar="ID_OR_URL")
    summary.add_argument("--points", type=int, default=5, help="key points (default: 5)")
    summary.add_argument("--language", default="English", help="language (default: English)")


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[AsyncConnectionPool]:
    """A pool on BOT_DATABASE_URL, or on the embedded server as `bot.app.App` starts it."""
    async with AsyncExitStack() as stack:
        url = await database_url(settings, ensure_writable_dir(settings.data_dir), stack)
        pool = await open_pool(url)
        stack.push_async_callback(pool.close)  # closed before the server stops
        yield pool


async def run_docs(settings: Settings, args: argparse.Namespace) -> int:
    """Run one `docs` action; the exit status is 0 on success, 1 when something failed."""
    try:
        if args.docs_command in ("ask", "summarize"):
            return await _run_with_model(settings, args)
        async with open_database(settings) as pool:
            store = PgDocumentStore(pool, MiniLMEmbedder())
            if args.docs_command == "add":
                return await _add(store, args.scope, args.sources)
            if args.docs_command == "list":
                return await _list(store, args.scope)
            removed = await store.remove(args.scope, args.id)
            print(f"removed #{removed.id} {removed.title!r} ({removed.chunk_count} passages)")
            return 0
    except DocumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def _add(store: PgDocumentStore, scope: str, sources: list[str]) -> int:
    ingestor = Ingestor(store)
    paths = expand_sources(sources)
    if not paths:
        print("error: no documents found there (.txt, .md, .html, .pdf or URLs)", file=sys.stderr)
        return 1
    failures = 0
    # Bars go to stderr and only to a terminal; results are lines on stdout.
    files = tqdm(paths, desc="files", unit="file", disable=None, file=sys.stderr)
    for source in files:
        bar = tqdm(desc="  embedding", unit="chunk", leave=False, disable=None, file=sys.stderr)

        def progress(done: int, total: int, bar: tqdm[Any] = bar) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            result = await ingestor.add(scope, source, added_by="terminal", progress=progress)
        except DocumentError as exc:
            failures += 1
            tqdm.write(f"error: {exc}", file=sys.stderr)
            continue
        finally:
            bar.close()
        info = result.document
        if result.duplicate:
            tqdm.write(f"already added: {source} is #{info.id} {info.title!r}")
        else:
            tqdm.write(f"added #{info.id} {info.title!r} ({info.chunk_count} passages)")
        for warning in result.warnings:
            tqdm.write(f"warning: {source}: {warning}", file=sys.stderr)
    files.close()
    print(f"{len(paths) - failures} of {len(paths)} added or already there")
    return 1 if failures else 0


async def _list(store: PgDocumentStore, scope: str) -> int:
    documents = await store.list_documents(scope)
    if not documents:
        print(f"no documents in {scope}; add some with `python -m bot docs add PATH_OR_URL`")
        return 0
    for info in documents:
        added = info.added_at.strftime("%Y-%m-%d %H:%M")
        print(
            f"#{info.id:<5} {info.title[:50]:<50} {info.chunk_count:>5} passages  "
            f"{added}  {info.source}"
        )
    return 0


async def _run_with_model(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here: the app pulls in the inference stack, which add/list/remove skip.
    from bot.app import App
    from inference.chat_model import PoolChatModel

    sampling = settings.sampling.generation()
    async with App(settings) as app:
        model = PoolChatModel(client=app.inference, scope=args.scope, model=settings.model_name)
        docs = DocsService(app.documents, model, sampling, context_tokens=settings.context_size)
        if args.docs_command == "ask":
            answer = await docs.ask(args.scope, args.question, k=args.k)
            print(answer.render())
            return 0
        try:
            summary = await docs.summarize(
                args.scope, args.target, points=args.points, language=args.language
            )
        except InvalidRequest as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(summary.render())
        return 0
