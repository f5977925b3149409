"""A GGUF model with the exact shape of another and random weights.

Throughput does not depend on the weights' values when every request generates a fixed
number of tokens, so the GPU benchmark runs the bundled SmolLM2-135M's shape without
carrying its 98 MB: `save_header` keeps the file's header here (metadata, tokenizer,
chat template, tensor names, types and shapes: under 2 MB), and `write_random_model`
rebuilds a file of the same size there, filling every tensor with valid blocks of its
own quantization type (Q4_1, Q8_0, F32 in the bundled model), so llama.cpp runs the
same kernels on the same shapes.

Generation must not end early: the token embedding is tied to the output layer, so a
token whose embedding row is all zeros always gets the logit 0, below the greedy
maximum of 49,000 random ones. Those rows are zeroed for every token that is not plain
text (end-of-generation and other control tokens) and for every token that is not
whole UTF-8 on its own (each generated token must stream some text, or time to first
token could not be measured). `generated_text_ok` in the benchmark checks the count.

Needs the `gguf` package: the copy inside llama.cpp's sources (`gguf-py`) will do.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

EMBEDDING = "token_embd.weight"
NORMAL_TOKEN = 1  # llama.cpp's LLAMA_TOKEN_TYPE_NORMAL
POOL_BLOCKS = 32_771  # a prime, so rows of different widths do not repeat in step


def save_header(model: Path, dest: Path) -> dict[str, Any]:
    """Copy `model`'s header (everything before the tensor data) to `dest`, and write
    beside it (`dest` with `.json`) what is needed to rebuild a file of the same size."""
    from gguf import GGUFReader

    reader = GGUFReader(model)
    data_offset = int(reader.data_offset)
    with model.open("rb") as source, dest.open("wb") as out:
        out.write(source.read(data_offset))
    info = {
        "source": model.name,
        "data_offset": data_offset,
        "file_bytes": model.stat().st_size,
        "tensors": len(reader.tensors),
    }
    dest.with_suffix(".json").write_text(json.dumps(info, indent=1))
    return info


def _decoded_bytes() -> dict[str, int]:
    """GPT-2 byte-level BPE: the character each byte is spelled with in the vocabulary."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars = {byte: chr(byte) for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in chars:
            chars[byte] = chr(256 + extra)
            extra += 1
    return {char: byte for byte, char in chars.items()}


def silent_tokens(tokens: list[str], types: list[int], tokenizer: str) -> list[int]:
    """Ids of the tokens that must never be generated: not plain text, or (for a
    byte-level vocabulary) not whole UTF-8 when decoded alone."""
    to_byte = _decoded_bytes() if tokenizer == "gpt2" else None
    silent = []
    for token_id, (text, kind) in enumerate(zip(tokens, types, strict=True)):
        if kind != NORMAL_TOKEN:
            silent.append(token_id)
            continue
        if to_byte is None:
            continue
        try:
            decoded = bytes(to_byte[char] for char in text).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            silent.append(token_id)
            continue
        if not decoded:
            silent.append(token_id)
    return silent


def _block_pool(qtype: Any, rng: np.random.Generator) -> np.ndarray:
    """Raw bytes of POOL_BLOCKS valid blocks of `qtype` holding small random weights."""
    from gguf import GGML_QUANT_SIZES, quants

    block_size, _ = GGML_QUANT_SIZES[qtype]
    values = rng.standard_normal((POOL_BLOCKS, block_size)).astype(np.float32) * 0.05
    return np.ascontiguousarray(quants.quantize(values, qtype)).view(np.uint8).reshape(-1)


def write_random_model(header: Path, dest: Path, seed: int = 0) -> int:
    """Write `dest`: `header` followed by random tensors. Returns how many token ids were
    silenced. The file is written under a temporary name and renamed when complete."""
    from gguf import GGMLQuantizationType, GGUFReader

    info = json.loads(header.with_suffix(".json").read_text())
    partial = dest.with_name(dest.name + ".partial")
    with header.open("rb") as source, partial.open("wb") as out:
        shutil.copyfileobj(source, out)
        out.truncate(int(info["file_bytes"]))
    reader = GGUFReader(partial, "r+")
    if len(reader.tensors) != info["tensors"]:
        raise SystemExit(f"{header} does not describe {info['tensors']} tensors")
    rng = np.random.default_rng(seed)
    pools: dict[Any, np.ndarray] = {}
    for tensor in reader.tensors:
        raw = tensor.data
        if tensor.tensor_type == GGMLQuantizationType.F32:
            raw[...] = 1.0  # only norm weights are F32 in these models
            continue
        if tensor.tensor_type not in pools:
            pools[tensor.tensor_type] = _block_pool(tensor.tensor_type, rng)
        flat = raw.reshape(-1).view(np.uint8)
        flat[...] = np.resize(pools[tensor.tensor_type], flat.size)
    silent = _silence_tokens(reader)
    reader.data.flush()
    del reader
    partial.replace(dest)
    return silent


def _silence_tokens(reader: Any) -> int:
    fields = reader.fields
    if "output.weight" in {tensor.name for tensor in reader.tensors}:
        raise SystemExit("the model has an output layer of its own: zero rows of that instead")
    tokens = fields["tokenizer.ggml.tokens"].contents()
    types = fields["tokenizer.ggml.token_type"].contents()
    tokenizer = fields["tokenizer.ggml.model"].contents()
    silent = silent_tokens(tokens, types, tokenizer)
    embedding = next(tensor for tensor in reader.tensors if tensor.name == EMBEDDING)
    rows = embedding.data.reshape(len(tokens), -1)  # one row of blocks per token
    rows[silent] = 0  # zero scales: every weight of the row is 0
    return len(silent)
