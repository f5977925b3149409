"""Checks that a data directory exists and is writable, with an error naming the fix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from storage.errors import DataDirError


def ensure_writable_dir(path: Path, setting: str = "BOT_DATA_DIR") -> Path:
    """Create `path` if needed and prove it is writable by writing a probe file."""
    path = path.expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True):
            pass
    except OSError as exc:
        raise DataDirError(
            f"cannot write to data directory {path} ({exc.strerror or exc}); "
            f"set {setting} to a writable folder"
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataDirError(
            f"cannot write to data directory {path}; set {setting} to a writable folder"
        )
    return path
