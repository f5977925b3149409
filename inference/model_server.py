"""An OpenAI-compatible model server (llama-server, vLLM, SGLang, Ollama) standing in for
the worker pool: what it is, what it takes, and its errors in words a person can act on.

The chat model over it is `inference.server_chat_model.ServerChatModel`; this module
holds the connection (the `openai` package's client) and the start-up probe, which
finds out which server it is, whether it serves the configured model, and which of our
sampling settings it cannot apply (named in the log once, not dropped silently)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
import openai

from inference.errors import ModelServerError

log = logging.getLogger(__name__)

# Sampling settings every OpenAI-compatible server takes, under these names.
STANDARD_SAMPLING = frozenset({"temperature", "top_p", "max_tokens", "seed", "stop"})
# Ours that are not in OpenAI's API, and what each kind of server calls them (sent in
# the request body beside the standard ones). A server not listed takes none of them.
EXTRA_SAMPLING: dict[str, dict[str, str]] = {
    "llama-server": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty"},
    "vllm": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"},
    "sglang": {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repetition_penalty"},
    "ollama": {},
}
ALL_EXTRA = ("top_k", "min_p", "repeat_penalty")
# Where each kind answers something only it answers: how the probe tells them apart.
_SIGNATURES = [
    ("llama-server", "/props", "default_generation_settings"),
    ("sglang", "/get_model_info", "model_path"),
    ("ollama", "/api/version", "version"),
    ("vllm", "/version", "version"),
]


@dataclass(frozen=True)
class ServerConfig:
    base_url: str  # the API's root, usually ending in /v1
    api_key: str = ""
    model: str = ""  # empty: the first model the server lists
    timeout_s: float = 120.0  # for the first token, and between tokens
    connect_timeout_s: float = 5.0


@dataclass
class ServerInfo:
    kind: str = "unknown"  # llama-server, vllm, sglang, ollama or unknown
    models: list[str] = field(default_factory=list)
    reachable: bool = False
    problem: str = ""  # why the last probe failed


class ModelServer:
    """One OpenAI-compatible server. `async with` or `close()`."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.url = config.base_url.rstrip("/")
        timeout = httpx2.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        # No retries: a person is waiting, and the error should say what is wrong now.
        self.client = openai.AsyncOpenAI(
            base_url=self.url,
            api_key=config.api_key or "unused",  # servers without keys ignore it
            timeout=timeout,
            max_retries=0,
        )
        self.info = ServerInfo()
        self.model = config.model

    async def __aenter__(self) -> ModelServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.client.close()

    def extra_names(self) -> dict[str, str]:
        """Our sampling settings beyond OpenAI's that this server takes, by its names."""
        return EXTRA_SAMPLING.get(self.info.kind, {})

    def unsupported(self) -> list[str]:
        return [name for name in ALL_EXTRA if name not in self.extra_names()]

    def describe(self) -> str:
        """One line for `/stats` and the log: which backend serves, and how it is."""
        kind = self.info.kind if self.info.kind != "unknown" else "OpenAI-compatible server"
        state = "answering" if self.info.reachable else f"not answering ({self.info.problem})"
        return f"model server {kind} at {self.url}, model {self.model or '?'}: {state}"

    async def probe(self) -> ServerInfo:
        """Find out what the server is and what it serves, and log what it cannot do.
        A server that is down is logged, not fatal: requests then say so to the person
        until it is back, and the next probe (from `/stats`) finds it again."""
        info = ServerInfo(kind=self.info.kind)
        try:
            models = await self.client.models.list()
            info.models = [model.id for model in models.data]
            info.reachable = True
        except openai.APIError as exc:
            info.problem = str(explain(exc, self.url))
        if info.reachable and info.kind == "unknown":
            info.kind = await self._kind()
        if info.reachable and not self.model and info.models:
            self.model = info.models[0]
        if info.reachable and self.model and info.models and self.model not in info.models:
            log.warning(
                "the model server at %s does not list the model %r (it lists %s); "
                "set BOT_LLM_MODEL to one of those",
                self.url,
                self.model,
                ", ".join(info.models),
            )
        first = self.info.kind == "unknown" and info.kind != "unknown"
        self.info = info
        if not info.reachable:
            log.warning("%s", info.problem)
        elif first and self.unsupported():
            log.warning(
                "the model server at %s (%s) does not take the sampling settings %s: "
                "they are not applied to its answers",
                self.url,
                info.kind,
                ", ".join(self.unsupported()),
            )
        return info

    async def _kind(self) -> str:
        root = self.url.removesuffix("/v1")
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        async with httpx.AsyncClient(
            timeout=self.config.connect_timeout_s, headers=headers
        ) as http:
            for kind, path, key in _SIGNATURES:
                try:
                    response = await http.get(root + path)
                    body: Any = response.json() if response.is_success else {}
                except (httpx.HTTPError, ValueError):
                    continue
                if isinstance(body, dict) and key in body:
                    return kind
        return "unknown"


def explain(exc: BaseException, url: str) -> ModelServerError:
    """A foreign error from talking to the server, as one line naming the server, what
    happened and what to check."""
    if isinstance(exc, openai.APITimeoutError):
        return ModelServerError(f"the model server at {url} did not answer in time; try again")
    if isinstance(exc, openai.APIConnectionError):
        return ModelServerError(
            f"the model server at {url} is not reachable ({exc.__cause__ or exc}); "
            "is it running, and is BOT_LLM_BASE_URL right?"
        )
    if isinstance(exc, openai.APIStatusError):
        detail = _detail(exc)
        hint = {
            401: " (the key was refused: check BOT_LLM_API_KEY)",
            403: " (the key was refused: check BOT_LLM_API_KEY)",
            404: " (check BOT_LLM_MODEL and that BOT_LLM_BASE_URL ends in /v1)",
        }.get(exc.status_code, "")
        return ModelServerError(
            f"the model server at {url} answered {exc.status_code}: {detail}{hint}"
        )
    if isinstance(exc, openai.APIError):
        return ModelServerError(f"the model server at {url} reported an error: {exc.message}")
    return ModelServerError(f"the model server at {url} sent a broken answer ({exc})")


def _detail(exc: openai.APIStatusError) -> str:
    """The server's own words, shortened: a JSON error's message, else the start of the
    body (an HTML error page is cut to its first line of text)."""
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or body
        if isinstance(message, dict):
            message = message.get("message", message)
        return str(message)[:200]
    text = exc.response.text.strip() if exc.response is not None else ""
    if text.lstrip().startswith("<"):
        return "an HTML page, not the API (does BOT_LLM_BASE_URL point at the API, /v1?)"
    return (text.splitlines() or ["no detail"])[0][:200]
