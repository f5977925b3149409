"""Several processes on one data directory share its embedded servers: the first starts
a server, the others attach, and it stops only when the last one leaves (or dies)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from storage import shared_server
from storage.embedded_redis import EmbeddedRedis
from storage.errors import ServiceStartError
from storage.process_ids import ProcessId
from storage.shared_server import UsersFile

REPO = Path(__file__).resolve().parents[2]

# A process that uses one embedded server until it reads a line, then leaves.
USER_PROGRAM = """
import sys
from pathlib import Path
from storage.embedded_postgres import EmbeddedPostgres
from storage import shared_server
from storage.embedded_redis import EmbeddedRedis
from storage.errors import ServiceStartError
kind, path = sys.argv[1], Path(sys.argv[2])
server = {"redis": EmbeddedRedis, "postgres": EmbeddedPostgres}[kind](path)
server.start()
print(server.url, flush=True)
sys.stdin.readline()
server.stop()
"""


class ServerUser:
    """A separate process using the server for one data directory."""

    def __init__(self, kind: str, data_dir: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", USER_PROGRAM, kind, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        assert self.url, f"the {kind} user failed to start (exit {self.process.poll()})"

    def leave(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("leave\n")
        self.process.stdin.flush()
        assert self.process.wait(timeout=60) == 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def end(self, how: str) -> None:
        self.leave() if how == "leave" else self.kill()


@pytest.fixture
def users() -> Iterator[list[ServerUser]]:
    started: list[ServerUser] = []
    yield started
    for user in started:
        if user.process.poll() is None:
            user.leave()


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
    finally:
        client.close()


def wait_until(condition: object, timeout_s: float = 30.0) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


@pytest.mark.parametrize("first_goes", ["leave", "kill"])
@pytest.mark.parametrize("order", ["starter first", "attacher first"])
def test_redis_stays_up_until_its_last_user_goes(
    tmp_path: Path, users: list[ServerUser], first_goes: str, order: str
) -> None:
    data_dir = tmp_path / "redis"
    starter = ServerUser("redis", data_dir)
    users.append(starter)
    attacher = ServerUser("redis", data_dir)
    users.append(attacher)
    assert attacher.url == starter.url
    first, last = (starter, attacher) if order == "starter first" else (attacher, starter)
    client = redis.Redis.from_url(starter.url, socket_timeout=2)
    client.set("kept", "yes")

    first.end(first_goes)
    assert client.get("kept") == b"yes"  # still served to the one left
    last.leave()
    assert not redis_answers(starter.url)
    assert UsersFile(data_dir.parent / "redis.users.json")._read().users == []
    client.close()


def test_redis_whose_users_were_all_killed_is_stopped_by_its_guard(
    tmp_path: Path, users: list[ServerUser]
) -> None:
    data_dir = tmp_path / "redis"
    for _ in range(2):
        users.append(ServerUser("redis", data_dir))
    state = UsersFile(data_dir.parent / "redis.users.json")._read()
    assert state.server is not None and state.guard is not None and len(state.users) == 2
    for user in users:
        user.kill()
    assert wait_until(lambda: not state.server.alive())  # type: ignore[union-attr]
    assert not redis_answers(users[0].url)
    assert wait_until(lambda: not state.guard.alive())  # type: ignore[union-attr]


def test_a_process_attaches_to_a_server_whose_starter_was_killed(
    tmp_path: Path, users: list[ServerUser]
) -> None:
    data_dir = tmp_path / "redis"
    starter = ServerUser("redis", data_dir)
    users.append(starter)
    redis.Redis.from_url(starter.url).set("before", "1")
    attacher = ServerUser("redis", data_dir)
    starter.kill()
    in_this_process = EmbeddedRedis(data_dir)
    in_this_process.start()
    try:
        assert not in_this_process.started_server
        assert redis.Redis.from_url(in_this_process.url).get("before") == b"1"
        attacher.leave()
        assert redis_answers(in_this_process.url)  # this process still uses it
    finally:
        in_this_process.stop()
    assert not redis_answers(in_this_process.url)


@pytest.mark.parametrize("first_goes", ["leave", "kill"])
def test_postgres_stays_up_until_its_last_user_goes(
    tmp_path: Path, users: list[ServerUser], first_goes: str
) -> None:
    data_dir = tmp_path / "pg"
    starter = ServerUser("postgres", data_dir)
    users.append(starter)
    attacher = ServerUser("postgres", data_dir)
    users.append(attacher)
    assert attacher.url == starter.url

    starter.end(first_goes)
    with psycopg.connect(attacher.url, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    attacher.leave()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(starter.url, connect_timeout=2).close()


def test_a_recorded_process_is_dead_once_killed_even_before_it_is_reaped() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    recorded = ProcessId.of(child.pid)
    assert recorded.alive()
    child.kill()
    assert wait_until(lambda: not recorded.alive(), timeout_s=10)  # a zombie is dead
    child.wait()
    assert not ProcessId(os.getpid(), "1").alive()  # same pid, another start: not it


def test_a_process_stuck_holding_the_lock_gives_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "redis"
    data_dir.mkdir()
    lock_path = UsersFile(data_dir.parent / "redis.users.json").lock_path
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "lock = open(sys.argv[1], 'a+b'); fcntl.flock(lock, fcntl.LOCK_EX)\n"
            "lock.write(str(os.getpid()).encode()); lock.flush()\n"
            "print('held', flush=True); time.sleep(60)",
            str(lock_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(shared_server, "LOCK_TIMEOUT_S", 0.5)
        with pytest.raises(ServiceStartError, match=f"pid {holder.pid}"):
            EmbeddedRedis(data_dir).start()
    finally:
        holder.kill()
        holder.wait()
