"""all-MiniLM-L6-v2 in numpy: a 6-layer BERT encoder read straight from its safetensors.

transformers' AutoModel does the same arithmetic but takes seconds to import and build, and torch
alone takes one or two to import; this needs neither, so the engine understands its first prompt
about a second after it starts. The tokenizer is the model's own `tokenizer.json` run by the
`tokenizers` library (what transformers' fast tokenizer wraps). tests/engine/test_minilm.py checks
the output against transformers' BertModel.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float

    @classmethod
    def read(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text())
        if raw.get("hidden_act", "gelu") != "gelu" or raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: only BERT with gelu and absolute positions is supported")
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__})


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to within 1.5e-7 (Abramowitz and Stegun 7.1.26): numpy has none, and scipy's costs an import."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact (erf) GELU."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class MiniLM:
    """Token, position and segment embeddings, then post-norm self-attention and feed-forward layers."""

    def __init__(self, config: BertConfig, weights: dict[str, np.ndarray]) -> None:
        self.config = config
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in weights.items()}

    @classmethod
    def load(cls, folder: Path) -> MiniLM:
        """The model in ``folder`` (config.json, model.safetensors with BertModel's names)."""
        from safetensors.numpy import load_file

        return cls(BertConfig.read(folder / "config.json"), load_file(str(folder / "model.safetensors")))

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        # as one 2-D product: numpy runs a stacked (3-D) matmul without BLAS, many times slower
        flat = x.reshape(-1, x.shape[-1]) @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], -1)

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.config.layer_norm_eps)

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Last hidden states, (batch, tokens, hidden), for token ``ids`` and attention ``mask`` (1 = a token)."""
        c, w = self.config, self.w
        b, t = ids.shape
        heads, size = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self._norm(x, "embeddings.LayerNorm")
        bias = np.where(mask[:, None, None, :] > 0, 0.0, np.finfo(np.float32).min).astype(np.float32)
        for i in range(c.num_hidden_layers):
            p = f"encoder.layer.{i}."

            def split(y: np.ndarray) -> np.ndarray:
                return y.reshape(b, t, heads, size).transpose(0, 2, 1, 3)  # (b, heads, t, size)

            q, k, v = (split(self._linear(x, f"{p}attention.self.{name}")) for name in ("query", "key", "value"))
            scores = np.einsum("bhqd,bhkd->bhqk", q, k, optimize=True) / math.sqrt(size) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attended = np.einsum("bhqk,bhkd->bhqd", scores / scores.sum(-1, keepdims=True), v, optimize=True)
            attended = attended.transpose(0, 2, 1, 3).reshape(b, t, c.hidden_size)
            x = self._norm(x + self._linear(attended, f"{p}attention.output.dense"), f"{p}attention.output.LayerNorm")
            inner = gelu(self._linear(x, f"{p}intermediate.dense"))
            x = self._norm(x + self._linear(inner, f"{p}output.dense"), f"{p}output.LayerNorm")
        return x
