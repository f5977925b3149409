"""The MiniLM forward pass as an ONNX graph run by ONNX Runtime: the same weights, the
same computation as `storage.documents.minilm`, about twice as fast on the CPU.

The graph is written here from the safetensors weights with `onnx.helper` (no PyTorch,
no export step, nothing downloaded): embeddings, six post-LayerNorm BERT layers with
exact (erf) GELU, and the last hidden state out; mean pooling and normalisation stay
in numpy with the caller. ONNX Runtime fuses the attention and GELU subgraphs and runs
each product on `threads` cores. `benchmarks/embedders.py` measures it beside the numpy
pass (cosine against sentence-transformers' vectors: `tests/storage`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from storage.documents.errors import EmbedderError

OPSET = 17  # LayerNormalization


def _graph(
    weights: Mapping[str, npt.NDArray[np.float32]], layers: int, heads: int, eps: float
) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    initializers: list[Any] = []

    def constant(name: str, value: npt.NDArray[Any]) -> str:
        initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def linear(x: str, name: str, out: str) -> str:
        weight = constant(name + ".wT", np.ascontiguousarray(weights[name + ".weight"].T))
        bias = constant(name + ".b", weights[name + ".bias"])
        return node("Add", [node("MatMul", [x, weight], out + ".mm"), bias], out)

    def layer_norm(x: str, name: str, out: str) -> str:
        scale = constant(name + ".g", weights[name + ".weight"])
        bias = constant(name + ".beta", weights[name + ".bias"])
        return node("LayerNormalization", [x, scale, bias], out, axis=-1, epsilon=eps)

    hidden = int(weights["embeddings.word_embeddings.weight"].shape[1])
    head_dim = hidden // heads
    split = constant("shape.heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge = constant("shape.hidden", np.array([0, 0, hidden], dtype=np.int64))
    scale = constant("scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    half = constant("half", np.array(0.5, dtype=np.float32))
    one = constant("one", np.array(1.0, dtype=np.float32))
    root2 = constant("root2", np.array(math.sqrt(2.0), dtype=np.float32))

    words = node(
        "Gather",
        [constant("word_embeddings", weights["embeddings.word_embeddings.weight"]), "input_ids"],
        "words",
    )
    positions = node(
        "Gather",
        [
            constant("position_embeddings", weights["embeddings.position_embeddings.weight"]),
            "position_ids",
        ],
        "positions",
    )
    token_type = constant("token_type", weights["embeddings.token_type_embeddings.weight"][0])
    summed = node("Add", [node("Add", [words, positions], "wp"), token_type], "embedded")
    x = layer_norm(summed, "embeddings.LayerNorm", "x0")
    for index in range(layers):
        p = f"encoder.layer.{index}."
        q, k, v = (
            node(
                "Transpose",
                [
                    node(
                        "Reshape",
                        [linear(x, p + f"attention.self.{n}", f"{p}{n}"), split],
                        f"{p}{n}.r",
                    )
                ],
                f"{p}{n}.t",
                perm=perm,
            )
            for n, perm in (("query", [0, 2, 1, 3]), ("key", [0, 2, 3, 1]), ("value", [0, 2, 1, 3]))
        )
        scores = node("Mul", [node("MatMul", [q, k], p + "qk"), scale], p + "scaled")
        probs = node(
            "Softmax", [node("Add", [scores, "key_bias"], p + "biased")], p + "probs", axis=-1
        )
        context = node("MatMul", [probs, v], p + "context")
        merged = node(
            "Reshape",
            [
                node(
                    "Transpose",
                    [
                        context,
                    ],
                    p + "context.t",
                    perm=[0, 2, 1, 3],
                ),
                merge,
            ],
            p + "merged",
        )
        dense = linear(merged, p + "attention.output.dense", p + "attn_out")
        attended = layer_norm(
            node("Add", [dense, x], p + "res1"), p + "attention.output.LayerNorm", p + "attended"
        )
        inner = linear(attended, p + "intermediate.dense", p + "inner")
        # GELU, exact: 0.5 * x * (1 + erf(x / sqrt(2))).
        erf = node("Erf", [node("Div", [inner, root2], p + "scaled_in")], p + "erf")
        gelu = node(
            "Mul",
            [node("Mul", [inner, half], p + "half_in"), node("Add", [erf, one], p + "erf1")],
            p + "gelu",
        )
        out = linear(gelu, p + "output.dense", p + "ffn_out")
        x = layer_norm(
            node("Add", [out, attended], p + "res2"), p + "output.LayerNorm", f"x{index + 1}"
        )
    nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    graph = helper.make_graph(
        nodes,
        "minilm",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["length"]),
            helper.make_tensor_value_info("key_bias", TensorProto.FLOAT, ["batch", 1, 1, "length"]),
        ],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "length", hidden])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


class OnnxForward:
    """The forward pass of the MiniLM whose `weights` are given, in ONNX Runtime."""

    def __init__(
        self,
        weights: Mapping[str, npt.NDArray[np.float32]],
        *,
        layers: int,
        heads: int,
        eps: float,
        threads: int = 2,
    ) -> None:
        try:
            import onnxruntime as ort

            model = _graph(weights, layers, heads, eps)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._session = ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # missing package, or a runtime that refuses the graph
            raise EmbedderError(f"ONNX Runtime cannot run the embedding model ({exc})") from exc

    def hidden(self, input_ids: npt.NDArray[np.int64], mask: npt.NDArray[np.float32]) -> Any:
        """The last hidden state, (batch, length, hidden), for padded `input_ids`."""
        length = input_ids.shape[1]
        key_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :].astype(np.float32)
        feeds = {
            "input_ids": input_ids,
            "position_ids": np.arange(length, dtype=np.int64),
            "key_bias": key_bias,
        }
        return self._session.run(["hidden"], feeds)[0]
