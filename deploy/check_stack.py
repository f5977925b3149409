"""Checks deploy/test-deploy.sh runs inside the stack (standard library only).

It is piped into a container of the compose project (`python - ACTION ...`), so it sees
the services by their compose names and nothing is published on the host.

  metrics URL NAME>=VALUE ...   the sum of NAME's samples at URL is at least VALUE
  targets PROMETHEUS JOB=N ...  Prometheus has N healthy targets of each job
  dashboard PROMETHEUS FILE     every query of the Grafana dashboard FILE evaluates, and
                                names only metrics that Prometheus has scraped
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.parse
import urllib.request
from typing import Any


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def samples(text: str, name: str) -> list[float]:
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$")
    return [float(m[2]) for line in text.splitlines() if (m := pattern.match(line))]


def check_metrics(url: str, *expectations: str) -> None:
    text = fetch(url)
    for expectation in expectations:
        name, _, minimum = expectation.partition(">=")
        found = samples(text, name)
        if not found:
            raise SystemExit(f"{url}: no metric {name}")
        if sum(found) < float(minimum):
            raise SystemExit(f"{url}: {name} is {sum(found)}, expected at least {minimum}")
        print(f"ok: {url} {name} = {sum(found):g}")


def prometheus_api(base: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    body = json.loads(fetch(f"{base}/api/v1/{path}{query}"))
    if body.get("status") != "success":
        raise SystemExit(f"Prometheus {path}: {body}")
    return body["data"]


def check_targets(base: str, *expectations: str, timeout_s: float = 120.0) -> None:
    """Wait until every expected job has its number of targets up (scrapes are 15 s apart)."""
    wanted = {job: int(count) for job, _, count in (e.partition("=") for e in expectations)}
    deadline = time.monotonic() + timeout_s
    while True:
        active = prometheus_api(base, "targets")["activeTargets"]
        up: dict[str, int] = {}
        for target in active:
            if target["health"] == "up":
                up[target["labels"]["job"]] = up.get(target["labels"]["job"], 0) + 1
        if all(up.get(job, 0) == count for job, count in wanted.items()):
            print(f"ok: Prometheus scrapes every target: {up}")
            return
        if time.monotonic() > deadline:
            states = [(t["labels"]["job"], t["scrapeUrl"], t["health"]) for t in active]
            raise SystemExit(f"Prometheus targets not all up after {timeout_s:.0f} s: {states}")
        time.sleep(2)


_METRIC = re.compile(r"\b((?:bot|inference)_[a-z_]+)\b")


def check_dashboard(base: str, path: str, timeout_s: float = 60.0) -> None:
    """Every query names metrics Prometheus has scraped, and parses. A counter appears
    only once something counted (a job done), and Prometheus sees it at its next scrape
    (every 15 s): names still missing are looked for again until `timeout_s`."""
    with open(path, encoding="utf-8") as handle:
        dashboard = json.load(handle)
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    if not exprs:
        raise SystemExit(f"{path}: no queries")
    deadline = time.monotonic() + timeout_s
    while True:
        known = set(prometheus_api(base, "label/__name__/values"))
        missing = {name for expr in exprs for name in _METRIC.findall(expr) if name not in known}
        if not missing:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{path}: its queries name metrics nobody exports: {sorted(missing)}")
        time.sleep(3)
    for expr in exprs:
        prometheus_api(base, "query", query=expr)  # a query that does not parse fails here
    print(f"ok: {len(exprs)} dashboard queries evaluate against scraped metric names")


def main(argv: list[str]) -> None:
    action, *args = argv
    if action == "metrics":
        check_metrics(*args)
    elif action == "targets":
        check_targets(*args)
    elif action == "dashboard":
        check_dashboard(*args)
    else:
        raise SystemExit(f"unknown action {action!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
