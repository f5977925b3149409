"""An embedded server shared by every process that uses one data directory.

Several processes may run on one data directory at once (`make run` in two terminals,
a `docs` command beside `serve`). The first to need a server starts it, later ones
attach to it, and the last to leave stops it, whichever one started it. Who uses the
server is recorded in `<name>.users.json` beside its data, read and written only under
an exclusive `flock` on `<name>.users.lock`; the lock is also held while the server is
started or stopped, so no process attaches to a server being stopped, and two never
start one each. The kernel drops a dead holder's `flock`, so a killed process never
blocks the others.

A process that is SIGKILLed never leaves: its entry is dropped as soon as its process
is gone (`ProcessId` tells a reused pid apart). So that a server whose users all died
that way does not run for ever, whoever starts it also starts a guard process
(`python -m storage.server_guard`) which checks the users every second and stops the
server when none is left alive; an attaching process starts a new guard if that one
died.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from storage.errors import ServiceStartError
from storage.lifecycle import BlockingService
from storage.process_ids import ProcessId

log = logging.getLogger(__name__)

# How long a stopped server may take to exit before it is killed.
_STOP_TIMEOUT_S = 15.0
# How long to wait for another process starting or stopping the server (a first start
# of PostgreSQL creates its cluster: several seconds on a slow machine).
LOCK_TIMEOUT_S = 90.0


@dataclass
class User:
    process: ProcessId
    token: str  # one process may attach more than once (tests, an app and a command)


@dataclass
class ServerState:
    """What `<name>.users.json` holds: the server, its guard and its users."""

    server: ProcessId | None = None
    stop_signal: int = signal.SIGTERM
    guard: ProcessId | None = None
    users: list[User] = field(default_factory=list)

    def drop_dead_users(self) -> None:
        self.users = [user for user in self.users if user.process.alive()]

    def server_alive(self) -> bool:
        return self.server is not None and self.server.alive()

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server.to_json() if self.server else None,
            "stop_signal": int(self.stop_signal),
            "guard": self.guard.to_json() if self.guard else None,
            "users": [{**user.process.to_json(), "token": user.token} for user in self.users],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ServerState:
        return cls(
            server=ProcessId.from_json(raw["server"]) if raw.get("server") else None,
            stop_signal=int(raw.get("stop_signal", signal.SIGTERM)),
            guard=ProcessId.from_json(raw["guard"]) if raw.get("guard") else None,
            users=[
                User(ProcessId.from_json(entry), str(entry["token"]))
                for entry in raw.get("users", [])
            ],
        )


class UsersFile:
    """The users file of one server and its lock."""

    def __init__(self, state_path: Path) -> None:
        self.path = state_path
        self.lock_path = state_path.with_suffix(".lock")

    @contextmanager
    def locked(self) -> Iterator[ServerState]:
        """Hold the lock; yield the state, written back when the block ends normally."""
        with open(self.lock_path, "a+b") as lock:
            self._acquire(lock)
            state = self._read()
            before = state.to_json()
            yield state
            if state.to_json() != before:
                self._write(state)

    def _acquire(self, lock: BinaryIO) -> None:
        # The kernel releases the lock of a process that dies, but not of one that hangs
        # (stopped, or stuck starting a server): give up after a while, naming it.
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    lock.seek(0)
                    holder = lock.read().decode(errors="replace").strip() or "unknown"
                    raise ServiceStartError(
                        f"another process (pid {holder}) has been starting or stopping "
                        f"the server for {self.path.stem.removesuffix('.users')} "
                        f"over {LOCK_TIMEOUT_S:.0f} s; stop that process, or set "
                        "BOT_DATA_DIR to another folder"
                    ) from None
                time.sleep(0.05)
        lock.truncate(0)
        lock.write(str(os.getpid()).encode())
        lock.flush()

    def _read(self) -> ServerState:
        try:
            return ServerState.from_json(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return ServerState()
        except (ValueError, KeyError, TypeError) as exc:
            # A file cut short by a crash mid-write: its users are re-registered as they
            # come; a server it named is found again through its own pid file or socket.
            log.warning("ignoring an unreadable %s (%s)", self.path, exc)
            return ServerState()

    def _write(self, state: ServerState) -> None:
        partial = self.path.with_suffix(".json.partial")
        partial.write_text(json.dumps(state.to_json()))
        partial.replace(self.path)  # atomic: a reader sees the old file or the new one


def stop_process(process: ProcessId, stop_signal: int, what: str) -> None:
    """Ask `process` to exit with `stop_signal`; kill it if it has not within a while."""
    try:
        os.kill(process.pid, stop_signal)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    while process.alive():
        if time.monotonic() > deadline:
            log.warning("%s did not stop within %.0f s; killing it", what, _STOP_TIMEOUT_S)
            with suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            return
        time.sleep(0.05)


class SharedServer(BlockingService):
    """Attach to the server for a data directory, starting it if none runs; leave it,
    stopping it if this was its last user. Subclasses say how to find, start and stop
    their kind of server."""

    name: str  # what the server is called in messages, e.g. "the embedded Redis server"
    stop_signal: int = signal.SIGTERM

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._token: str | None = None
        self.started_server = False  # this instance started the server it uses

    @abstractmethod
    def _prepare(self) -> None:
        """Make sure the data directory's parent exists and is writable."""

    @abstractmethod
    def _running_pid(self) -> int | None:
        """The pid of a server answering for this data directory, or None."""

    @abstractmethod
    def _launch(self) -> None:
        """Start the server, detached from this process, and wait until it answers."""

    @property
    def users_file(self) -> UsersFile:
        return UsersFile(self.data_dir.parent / f"{self.data_dir.name}.users.json")

    def start(self) -> None:
        self._prepare()
        me = ProcessId.me()
        with self.users_file.locked() as state:
            state.drop_dead_users()
            pid = self._running_pid()
            if pid is None:
                self._launch()
                pid = self._running_pid()
                if pid is None:
                    raise ServiceStartError(f"{self.name} did not stay up after starting")
                self.started_server = True
            else:
                log.info("attaching to %s already running (pid %d)", self.name, pid)
            state.server = ProcessId.of(pid)
            state.stop_signal = self.stop_signal
            self._token = secrets.token_hex(8)
            state.users.append(User(me, self._token))
            if state.guard is None or not state.guard.alive():
                state.guard = self._start_guard()

    def stop(self) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        with self.users_file.locked() as state:
            state.users = [user for user in state.users if user.token != token]
            state.drop_dead_users()
            if state.users or state.server is None:
                return
            if state.server.alive():
                log.info("last user of %s leaving: stopping it", self.name)
                stop_process(state.server, state.stop_signal, self.name)
            state.server = None

    def _start_guard(self) -> ProcessId:
        # Its own session and no inherited output: the guard must outlive this process
        # without holding a terminal or a caller's pipes open.
        guard = subprocess.Popen(
            [sys.executable, "-m", "storage.server_guard", str(self.users_file.path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": _import_path()},
        )
        return ProcessId.of(guard.pid)


def _import_path() -> str:
    """PYTHONPATH under which the guard imports this same `storage` package."""
    root = str(Path(__file__).resolve().parent.parent)
    inherited = os.environ.get("PYTHONPATH", "")
    return f"{root}{os.pathsep}{inherited}" if inherited else root
