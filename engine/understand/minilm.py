"""all-MiniLM-L6-v2 as a plain torch module: a 6-layer BERT encoder read straight from its safetensors.

transformers' AutoModel does the same arithmetic but takes seconds to import and build; this loads
in a fraction of a second, so the engine understands its first prompt sooner. The tokenizer is the
model's own `tokenizer.json` run by the `tokenizers` library (what transformers' fast tokenizer
wraps). tests/engine/understand/test_minilm.py checks the output against transformers' BertModel.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


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


class Layer(nn.Module):
    """Self-attention then a feed-forward block, each followed by residual and LayerNorm (post-norm BERT)."""

    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.heads = c.num_attention_heads
        self.qkv = nn.Linear(c.hidden_size, 3 * c.hidden_size)
        self.out = nn.Linear(c.hidden_size, c.hidden_size)
        self.norm1 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.up = nn.Linear(c.hidden_size, c.intermediate_size)
        self.down = nn.Linear(c.intermediate_size, c.hidden_size)
        self.norm2 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads) + bias  # (b, heads, t, t)
        attended = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = self.norm1(x + self.out(attended))
        return self.norm2(x + self.down(F.gelu(self.up(x))))


class MiniLM(nn.Module):
    """Token, position and segment embeddings, then the layers; returns the last hidden states."""

    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.words = nn.Embedding(c.vocab_size, c.hidden_size)
        self.positions = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.segments = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.layers = nn.ModuleList(Layer(c) for _ in range(c.num_hidden_layers))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.norm(self.words(ids) + self.positions(positions) + self.segments(torch.zeros_like(ids)))
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min  # padding is not attended
        for layer in self.layers:
            x = layer(x, bias)
        return x

    @classmethod
    def load(cls, folder: Path) -> MiniLM:
        """The model in ``folder`` (config.json, model.safetensors with BertModel's names), in eval mode."""
        from safetensors.torch import load_file

        config = BertConfig.read(folder / "config.json")
        w = {k.removeprefix("bert."): v for k, v in load_file(str(folder / "model.safetensors")).items()}
        state = {"words.weight": w["embeddings.word_embeddings.weight"],
                 "positions.weight": w["embeddings.position_embeddings.weight"],
                 "segments.weight": w["embeddings.token_type_embeddings.weight"],
                 "norm.weight": w["embeddings.LayerNorm.weight"], "norm.bias": w["embeddings.LayerNorm.bias"]}
        for i in range(config.num_hidden_layers):
            p = f"encoder.layer.{i}."
            for part in ("weight", "bias"):
                state[f"layers.{i}.qkv.{part}"] = torch.cat(
                    [w[f"{p}attention.self.{name}.{part}"] for name in ("query", "key", "value")])
                state[f"layers.{i}.out.{part}"] = w[f"{p}attention.output.dense.{part}"]
                state[f"layers.{i}.norm1.{part}"] = w[f"{p}attention.output.LayerNorm.{part}"]
                state[f"layers.{i}.up.{part}"] = w[f"{p}intermediate.dense.{part}"]
                state[f"layers.{i}.down.{part}"] = w[f"{p}output.dense.{part}"]
                state[f"layers.{i}.norm2.{part}"] = w[f"{p}output.LayerNorm.{part}"]
        model = cls(config)
        model.load_state_dict(state, assign=True)
        return model.eval()
