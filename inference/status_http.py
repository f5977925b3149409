"""A process's status over HTTP: `/metrics` (Prometheus text) and `/healthz`.

Both the inference worker and the bot serve one. `/healthz` answers 200 "ok" while the
process's own check passes and 503 with the reason otherwise, so compose's healthcheck
(or an orchestrator's probe) restarts or routes around a process that is up but stuck.
The server runs in its own daemon thread: a busy event loop or decode step does not
make the probe time out, and the check function must therefore be thread-safe.

`python -m inference.status_http PORT` is the healthcheck command: it exits 0 when
`/healthz` on 127.0.0.1:PORT answers 200, 1 otherwise (the images have no curl).
"""

from __future__ import annotations

import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

# Returns None while healthy, else what is wrong (shown in the 503 body).
HealthCheck = Callable[[], str | None]


class StatusServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        health: HealthCheck,
        port: int,
        address: str = "0.0.0.0",
    ) -> None:
        self.registry = registry
        self.health = health
        handler = type("_Handler", (_StatusHandler,), {"status": self})
        self._server = ThreadingHTTPServer((address, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="status-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> StatusServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> StatusServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _StatusHandler(BaseHTTPRequestHandler):
    status: StatusServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, generate_latest(self.status.registry), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            try:
                problem = self.status.health()
            except Exception as exc:  # a broken check is an unhealthy process, not a crash
                problem = f"health check failed: {exc}"
            if problem is None:
                self._reply(200, b"ok\n")
            else:
                self._reply(503, f"unhealthy: {problem}\n".encode())
        else:
            self._reply(404, b"not found: try /metrics or /healthz\n")

    def _reply(self, code: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a probe every few seconds would flood the log


def probe(port: int, host: str = "127.0.0.1", timeout_s: float = 3.0) -> str | None:
    """None when `/healthz` at host:port answers 200, else why not."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=timeout_s):
            return None
    except urllib.error.HTTPError as exc:
        return f"{exc.code}: {exc.read().decode(errors='replace').strip()}"
    except OSError as exc:
        return str(exc)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m inference.status_http PORT", file=sys.stderr)
        return 2
    problem = probe(int(args[0]))
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
