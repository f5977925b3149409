"""Feeds token sequences to a real llama.cpp sampler holding a tool call's lazy grammar.

Run as a child process by the tests, because llama.cpp aborts the whole process when a
lazy grammar wakes on text it cannot accept:

    python -m tests.inference.lazy_grammar_probe FORMAT TEXT [TEXT ...]

Each TEXT is a list of token pieces joined by "|"; each piece must be one token.
Exits 0 when every sequence was accepted without the process dying.
"""

from __future__ import annotations

import sys

import llama_cpp

from inference.llama_backend import BackendConfig, LlamaBackend
from inference.model_files import resolve_model_path
from inference.sampling import SamplingParams
from inference.tool_calls import plan_tools
from inference.tool_formats import FORMATS
from tests.inference.test_tool_calls import TOOLS


def main(format_name: str, sequences: list[str]) -> int:
    backend = LlamaBackend(BackendConfig(resolve_model_path(None), slots=1, ctx_per_slot=256))
    plan = plan_tools(TOOLS, "auto", FORMATS[format_name])
    assert plan is not None
    for sequence in sequences:
        sampler = backend.new_sampler(SamplingParams(), plan.grammar, plan.lazy_trigger)
        for piece in sequence.split("|"):
            tokens = backend.tokenize(piece)
            if len(tokens) != 1:
                print(f"{piece!r} is not one token: {tokens}", file=sys.stderr)
                return 2
            llama_cpp.llama_sampler_accept(sampler, tokens[0])
        backend.free_sampler(sampler)
    backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
