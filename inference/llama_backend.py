"""A thin, typed layer over llama.cpp's C API (through llama-cpp-python's bindings).

It owns one model, one context holding `slots` sequences, and one batch buffer. Only
the thread that created it may call it: llama.cpp contexts are not thread-safe.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp

from inference.errors import ModelNotFound
from inference.sampling import SamplingParams

# llama-cpp-python prints llama.cpp's log through this logger; only errors matter here.
logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)

_BACKEND_LOCK = threading.Lock()
_backend_ready = False

# llama.cpp draws a random seed when given this value.
RANDOM_SEED = 0xFFFFFFFF
# How many recent tokens the repetition penalty looks at (llama.cpp's default).
PENALTY_LAST_N = 64


def _init_backend() -> None:
    global _backend_ready
    with _BACKEND_LOCK:
        if not _backend_ready:
            llama_cpp.llama_backend_init()
            _backend_ready = True


def _extra_buffers_are_safe() -> bool:
    """Whether llama.cpp may put weights in its extra CPU buffer types (repacked layouts,
    Intel AMX tiles).

    On CPUs with AMX, a llama.cpp built for the host (GGML_NATIVE) multiplies batches of
    more than one token with AMX tile kernels, and where the kernel or a sandbox does not
    actually provide tile state those kernels crash the process with SIGSEGV on the first
    prompt (one-token batches take another path and work, which hides it). The plain CPU
    kernels are correct everywhere, so on such CPUs the extra buffers stay off.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return True
    return "amx_tile" not in flags


@dataclass(frozen=True)
class BackendConfig:
    model_path: Path
    slots: int
    ctx_per_slot: int
    batch_tokens: int = 512
    gpu_layers: int = 0
    threads: int = 0  # 0: all CPUs


class LlamaBackend:
    def __init__(self, config: BackendConfig) -> None:
        _init_backend()
        self.config = config
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = config.gpu_layers if config.gpu_layers >= 0 else 10_000
        model_params.use_extra_bufts = _extra_buffers_are_safe()
        with _BACKEND_LOCK:  # loads print through process-wide descriptors; one at a time
            self._model = llama_cpp.llama_model_load_from_file(
                str(config.model_path).encode(), model_params
            )
        if not self._model:
            raise ModelNotFound(f"llama.cpp could not load {config.model_path}")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        threads = config.threads or os.cpu_count() or 1
        ctx_params = llama_cpp.llama_context_default_params()
        ctx_params.n_ctx = config.slots * config.ctx_per_slot
        ctx_params.n_batch = config.batch_tokens
        ctx_params.n_ubatch = config.batch_tokens
        ctx_params.n_seq_max = config.slots
        ctx_params.n_threads = threads
        ctx_params.n_threads_batch = threads
        ctx_params.no_perf = True
        # Each sequence gets its own share of the cache (no cross-sequence attention work).
        ctx_params.kv_unified = False
        self._ctx = llama_cpp.llama_init_from_model(self._model, ctx_params)
        if not self._ctx:
            llama_cpp.llama_model_free(self._model)
            raise ModelNotFound(f"llama.cpp could not create a context for {config.model_path}")
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(config.batch_tokens, 0, 1)
        self._batch_size = 0
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._shown_special: set[int] = set()

    # -- model facts -------------------------------------------------------------------
    def metadata(self, key: str) -> str | None:
        buffer = ctypes.create_string_buffer(64 * 1024)
        size = llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buffer, len(buffer))
        return buffer.value.decode("utf-8", errors="replace") if size >= 0 else None

    def token_text(self, token: int) -> str:
        text = llama_cpp.llama_vocab_get_text(self._vocab, token)
        return text.decode("utf-8", errors="replace") if text else ""

    @property
    def bos_token(self) -> int:
        return int(llama_cpp.llama_vocab_bos(self._vocab))

    @property
    def eos_token(self) -> int:
        return int(llama_cpp.llama_vocab_eos(self._vocab))

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    # -- text <-> tokens ---------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 16
        tokens = (llama_cpp.llama_token * capacity)()
        # add_special=False: the rendered template already holds BOS where the model wants it.
        count = llama_cpp.llama_tokenize(
            self._vocab, data, len(data), tokens, capacity, False, True
        )
        if count < 0:  # the buffer was too small; -count is the size needed
            capacity = -count
            tokens = (llama_cpp.llama_token * capacity)()
            count = llama_cpp.llama_tokenize(
                self._vocab, data, len(data), tokens, capacity, False, True
            )
        return list(tokens[:count])

    def render_as_text(self, token: int) -> None:
        """Let `piece` write this special token's text (other special tokens write none)."""
        self._shown_special.add(token)

    def piece(self, token: int) -> bytes:
        special = token in self._shown_special
        buffer = ctypes.create_string_buffer(64)
        size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, special)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, -size, 0, special)
        return buffer.raw[:size]

    # -- sequences ---------------------------------------------------------------------
    def forget(self, seq_id: int, from_position: int = 0) -> None:
        """Drop a sequence's cached tokens from `from_position` on."""
        llama_cpp.llama_memory_seq_rm(self._memory, seq_id, from_position, -1)

    def save_sequence(self, seq_id: int) -> bytes:
        """A copy of the sequence's state (its KV cache), for `restore_sequence`."""
        size = llama_cpp.llama_state_seq_get_size(self._ctx, seq_id)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self._ctx, buffer, size, seq_id)
        if written == 0:
            raise RuntimeError(f"llama.cpp could not save the state of sequence {seq_id}")
        return ctypes.string_at(buffer, written)

    def restore_sequence(self, seq_id: int, data: bytes) -> None:
        """Replace what the sequence holds with a state `save_sequence` returned.

        The state may come from another sequence of this context (same model, same
        per-sequence size). On failure the sequence is left empty."""
        # set_data adds the saved cells; whatever the sequence held before must go first.
        self.forget(seq_id)
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(self._ctx, buffer, len(data), seq_id) == 0:
            self.forget(seq_id)  # a half-read state is worse than none
            raise RuntimeError(f"llama.cpp could not restore a saved state into sequence {seq_id}")

    # -- one decode step ---------------------------------------------------------------
    def batch_clear(self) -> None:
        self._batch_size = 0

    @property
    def batch_room(self) -> int:
        return self.config.batch_tokens - self._batch_size

    def batch_add(self, token: int, position: int, seq_id: int, logits: bool) -> int:
        """Add a token; returns its index in the batch (where its logits will be)."""
        index = self._batch_size
        batch = self._batch
        batch.token[index] = token
        batch.pos[index] = position
        batch.n_seq_id[index] = 1
        batch.seq_id[index][0] = seq_id
        batch.logits[index] = logits
        self._batch_size += 1
        return index

    def decode(self) -> None:
        self._batch.n_tokens = self._batch_size
        status = llama_cpp.llama_decode(self._ctx, self._batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status}")

    # -- sampling ----------------------------------------------------------------------
    def new_sampler(
        self, params: SamplingParams, grammar: str | None = None, lazy_trigger: str | None = None
    ) -> Any:
        """A sampler chain in llama.cpp's usual order; greedy when temperature is 0.

        With `grammar`, output is constrained to it; with `lazy_trigger` too, only from
        the first match group of that pattern on (before it, output is free)."""
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())

        def add(sampler: Any) -> None:
            llama_cpp.llama_sampler_chain_add(chain, sampler)

        if grammar is not None:
            add(self._grammar_sampler(grammar, lazy_trigger))
        if params.repeat_penalty != 1.0:
            add(
                llama_cpp.llama_sampler_init_penalties(
                    self.n_vocab, PENALTY_LAST_N, params.repeat_penalty, 0.0, 0.0
                )
            )
        if params.temperature <= 0.0:
            add(llama_cpp.llama_sampler_init_greedy())
            return chain
        if params.top_k > 0:
            add(llama_cpp.llama_sampler_init_top_k(params.top_k))
        add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
        add(llama_cpp.llama_sampler_init_min_p(params.min_p, 1))
        add(llama_cpp.llama_sampler_init_temp(params.temperature))
        add(llama_cpp.llama_sampler_init_dist(RANDOM_SEED if params.seed < 0 else params.seed))
        return chain

    def _grammar_sampler(self, grammar: str, lazy_trigger: str | None) -> Any:
        if lazy_trigger is None:
            sampler = llama_cpp.llama_sampler_init_grammar(self._vocab, grammar.encode(), b"root")
        else:
            patterns = (ctypes.c_char_p * 1)(lazy_trigger.encode())
            sampler = llama_cpp.llama_sampler_init_grammar_lazy_patterns(
                self._vocab, grammar.encode(), b"root", patterns, 1, None, 0
            )
        if not sampler:
            raise ValueError("llama.cpp could not parse the grammar")
        return sampler

    def sample(self, sampler: Any, batch_index: int) -> int:
        """Sample from the logits at `batch_index` (the sampler also records the token)."""
        return int(llama_cpp.llama_sampler_sample(sampler, self._ctx, batch_index))

    @staticmethod
    def free_sampler(sampler: Any) -> None:
        llama_cpp.llama_sampler_free(sampler)

    def close(self) -> None:
        if self._ctx:
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self._ctx)
            llama_cpp.llama_model_free(self._model)
            self._ctx = None
