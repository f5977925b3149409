"""The community's documents: one service (`DocsService`) that the chat commands,
uploads in a chat and the `docs` command line all call."""

from bot.docs.service import DocsService, document_sampling, read_target
from bot.docs.uploads import add_upload

__all__ = ["DocsService", "add_upload", "document_sampling", "read_target"]
