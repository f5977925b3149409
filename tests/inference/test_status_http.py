"""`/metrics` and `/healthz` over real HTTP, and the healthcheck command compose runs."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from inference.status_http import StatusServer, main, probe


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Switch:
    def __init__(self) -> None:
        self.problem: str | None = None

    def __call__(self) -> str | None:
        if self.problem == "raise":
            raise RuntimeError("the check itself broke")
        return self.problem


@pytest.fixture
def server() -> tuple[StatusServer, Switch, Counter]:
    registry = CollectorRegistry()
    counter = Counter("probe_things", "things", registry=registry)
    switch = Switch()
    with StatusServer(registry, switch, 0, address="127.0.0.1") as status:
        yield status, switch, counter


def test_metrics_and_health(server: tuple[StatusServer, Switch, Counter]) -> None:
    status, switch, counter = server
    counter.inc(3)
    code, body = get(status.port, "/metrics")
    assert code == 200 and "probe_things_total 3.0" in body
    assert get(status.port, "/healthz") == (200, "ok\n")
    assert probe(status.port) is None
    assert main([str(status.port)]) == 0

    switch.problem = "no heartbeat to Redis for 40 s"
    code, body = get(status.port, "/healthz")
    assert code == 503 and "no heartbeat to Redis for 40 s" in body
    assert probe(status.port) == "503: unhealthy: no heartbeat to Redis for 40 s"
    assert main([str(status.port)]) == 1

    switch.problem = "raise"
    code, body = get(status.port, "/healthz")
    assert code == 503 and "the check itself broke" in body
    assert get(status.port, "/metrics")[0] == 200  # the server goes on serving
    assert get(status.port, "/nope")[0] == 404


def test_probe_of_a_closed_port_fails_fast(capsys: pytest.CaptureFixture[str]) -> None:
    registry = CollectorRegistry()
    status = StatusServer(registry, lambda: None, 0, address="127.0.0.1")
    port = status.port
    status.close()  # never started: closing frees the port
    assert main([str(port)]) == 1
    assert "refused" in capsys.readouterr().err.lower()
    assert main(["not-a-port"]) == 2
