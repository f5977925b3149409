"""`/docs ...` in the chat: the community's documents, from any platform.

Anyone may list documents and ask questions; adding and removing change what the whole
community's answers draw on, so they are for admins. Local paths are the operator's
machine: only the operator (the terminal user) may add them; admins elsewhere add URLs.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel

from bot.docs_qa import ask
from bot.errors import InvalidRequest, PermissionDenied
from bot.scope import Role, Scope
from storage.documents import DocumentStore, Ingestor
from storage.documents.ingest import is_url

USAGE = (
    "usage: /docs list | /docs ask QUESTION | /docs add URL | /docs remove ID "
    "(adding and removing are for admins)"
)


class DocsCommands:
    def __init__(
        self, store: DocumentStore, model: BaseChatModel, sampling: dict[str, Any] | None = None
    ) -> None:
        self._store = store
        self._model = model
        # Answers from documents should stick to the text: a low temperature.
        self._sampling = {"temperature": 0.2, **(sampling or {})}

    async def handle(self, scope: Scope, rest: str) -> str:
        action, _, argument = rest.strip().partition(" ")
        argument = argument.strip()
        documents = scope.server_key
        if action == "list":
            return await self._list(documents)
        if action == "ask" and argument:
            answer = await ask(
                self._store, self._model, documents, argument, sampling=self._sampling
            )
            return answer.render()
        if action == "add" and argument:
            self._require(scope, Role.ADMIN, "add documents")
            if not is_url(argument):
                self._require(scope, Role.OPERATOR, "add files from this machine")
            result = await Ingestor(self._store).add(documents, argument, added_by=scope.actor)
            info = result.document
            if result.duplicate:
                return f"Already here: #{info.id} {info.title!r}."
            return f"Added #{info.id} {info.title!r} ({info.chunk_count} passages)."
        if action == "remove" and argument.isdigit():
            self._require(scope, Role.ADMIN, "remove documents")
            removed = await self._store.remove(documents, int(argument))
            return f"Removed #{removed.id} {removed.title!r}."
        raise InvalidRequest(USAGE)

    async def _list(self, documents: str) -> str:
        found = await self._store.list_documents(documents)
        if not found:
            return "No documents here yet; an admin can add some with /docs add URL."
        lines = [f"#{info.id} {info.title} ({info.chunk_count} passages)" for info in found]
        return "Documents here:\n" + "\n".join(lines)

    @staticmethod
    def _require(scope: Scope, role: Role, what: str) -> None:
        if scope.role < role:
            who = "the bot's operator" if role is Role.OPERATOR else "admins"
            raise PermissionDenied(f"only {who} can {what}")
