"""`python -m storage.server_guard USERS_FILE`: stops a shared embedded server once no
process using it is alive any more (they were all killed, so none could stop it).

Started by `storage.shared_server.SharedServer` beside the server it starts; it exits
when the server is gone, whoever stopped it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from storage.shared_server import UsersFile, stop_process

CHECK_INTERVAL_S = 1.0


def guard(users_file: UsersFile) -> None:
    while True:
        time.sleep(CHECK_INTERVAL_S)
        if not users_file.lock_path.exists():
            return  # the data directory was removed: nothing left to guard
        with users_file.locked() as state:
            if not state.server_alive():
                return
            state.drop_dead_users()
            if not state.users:
                assert state.server is not None  # server_alive() says so
                stop_process(state.server, state.stop_signal, "a server nobody uses")
                state.server = None
                return


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m storage.server_guard USERS_FILE", file=sys.stderr)
        return 2
    guard(UsersFile(Path(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
