"""A small nanoGPT-shaped decoder over the token vocabulary of engine/model/tokens.py.

One config dataclass, one module; the config lives in the checkpoint and the model is rebuilt
from it. Generation steps one token at a time with a key/value cache, so a clip of a few
hundred tokens costs a few hundred small matrix products, not a quadratic re-read.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network; saved in the checkpoint. The defaults are the shipped checkpoint's shape."""

    vocab_size: int
    block_size: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


class SelfAttention(nn.Module):
    """Causal multi-head self-attention with an optional key/value cache."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None,
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)  # (B, nh, T_past + T, hs)
            v = torch.cat([cache[1], v], dim=2)
        causal = cache is None or T > 1
        if cache is not None and T > 1:
            raise ValueError("with a cache, feed one token at a time")
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y), (k, v)


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.attn = SelfAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(nn.Linear(config.n_embd, 4 * config.n_embd), nn.GELU(),
                                 nn.Linear(4 * config.n_embd, config.n_embd), nn.Dropout(config.dropout))

    def forward(self, x: torch.Tensor, cache=None):
        attended, new_cache = self.attn(self.ln1(x), cache)
        x = x + attended
        x = x + self.mlp(self.ln2(x))
        return x, new_cache


class MusicTransformer(nn.Module):
    """Token embedding + learned positions, a stack of blocks, a tied output head."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tok = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.head.weight = self.tok.weight  # weight tying, as in nanoGPT
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, ignore_index: int = -100):
        """Logits (B, T, vocab) and, given targets, the mean cross-entropy over non-ignored ones."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than the block size {self.config.block_size}")
        x = self.drop(self.tok(idx) + self.pos(torch.arange(T, device=idx.device)))
        for block in self.blocks:
            x, _ = block(x)
        logits = self.head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1),
                                   ignore_index=ignore_index)
        return logits, loss

    @torch.no_grad()
    def prefill(self, idx: torch.Tensor) -> tuple[torch.Tensor, list]:
        """Run a whole context once; return the last position's logits (B, vocab) and the cache."""
        B, T = idx.shape
        x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))
        caches = []
        for block in self.blocks:
            x, cache = block(x)
            caches.append(cache)
        return self.head(self.ln_f(x[:, -1])), caches


def from_checkpoint(checkpoint: dict) -> MusicTransformer:
    """Rebuild the model from a checkpoint dict (config inside it), in float32 and eval mode.

    The output head is tied to the token embedding, so checkpoints leave it out.
    """
    model = MusicTransformer(ModelConfig(**checkpoint["model_config"]))
    state = {k: v.float() for k, v in checkpoint["state_dict"].items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"head.weight"}:
        raise ValueError(f"checkpoint does not fit the model: missing {missing}, unexpected {unexpected}")
    return model.eval()


class CachedDecoder:
    """Batch-1 incremental decoding with a preallocated key/value cache.

    The same arithmetic as ``MusicTransformer.forward`` (a test checks they agree), but
    without module-call overhead and without growing tensors: at a few hundred tokens per
    clip, per-step overhead is most of the cost on a CPU.
    """

    def __init__(self, model: MusicTransformer) -> None:
        c = model.config
        self.config = c
        self.model = model
        self.n_head, self.head_size = c.n_head, c.n_embd // c.n_head
        self.tok = model.tok.weight.detach()
        self.pos = model.pos.weight.detach()
        self.layers = []
        for block in model.blocks:
            self.layers.append((
                (block.ln1.weight.detach(), block.ln1.bias.detach()),
                (block.attn.qkv.weight.detach(), block.attn.qkv.bias.detach()),
                (block.attn.proj.weight.detach(), block.attn.proj.bias.detach()),
                (block.ln2.weight.detach(), block.ln2.bias.detach()),
                (block.mlp[0].weight.detach(), block.mlp[0].bias.detach()),
                (block.mlp[2].weight.detach(), block.mlp[2].bias.detach()),
            ))
        self.ln_f = (model.ln_f.weight.detach(), model.ln_f.bias.detach())
        self.k = [torch.zeros(c.n_head, c.block_size, self.head_size) for _ in range(c.n_layer)]  # (nh, T, hs)
        self.v = [torch.zeros(c.n_head, c.block_size, self.head_size) for _ in range(c.n_layer)]
        self.length = 0
        self.scale = 1.0 / math.sqrt(self.head_size)

    @torch.inference_mode()
    def reset(self, tokens: list[int]) -> torch.Tensor:
        """Start over with a context (one batched forward pass); return the logits (vocab,) after it."""
        if not 0 < len(tokens) <= self.config.block_size:
            raise ValueError(f"a context of 1-{self.config.block_size} tokens is needed, got {len(tokens)}")
        logits, caches = self.model.prefill(torch.tensor([tokens]))
        for keys, values, (k, v) in zip(self.k, self.v, caches, strict=True):
            keys[:, : len(tokens)] = k[0]  # (nh, T, hs)
            values[:, : len(tokens)] = v[0]
        self.length = len(tokens)
        return logits[0]

    @torch.inference_mode()
    def step(self, token: int) -> torch.Tensor:
        """Feed one token; return the logits (vocab,) for the next.

        torch.layer_norm and F.linear are called directly: the module wrappers' argument checks
        cost about a quarter of a step at this size.
        """
        t = self.length
        if t >= self.config.block_size:
            raise ValueError(f"context is full ({self.config.block_size} tokens)")
        C, nh, hs = self.config.n_embd, self.n_head, self.head_size
        x = (self.tok[token] + self.pos[t]).view(1, C)
        for (ln1, qkv, proj, ln2, fc, out), keys, values in zip(self.layers, self.k, self.v, strict=True):
            h = torch.layer_norm(x, (C,), ln1[0], ln1[1], 1e-5)
            q, k, v = F.linear(h, qkv[0], qkv[1]).view(3, nh, hs)
            keys[:, t] = k
            values[:, t] = v
            att = torch.softmax(torch.matmul(keys[:, : t + 1], q.unsqueeze(-1)).squeeze(-1) * self.scale, dim=-1)
            y = torch.matmul(att.unsqueeze(1), values[:, : t + 1]).view(1, C)  # (nh, 1, hs) -> (1, C)
            x = x + F.linear(y, proj[0], proj[1])
            h = torch.layer_norm(x, (C,), ln2[0], ln2[1], 1e-5)
            x = x + F.linear(F.gelu(F.linear(h, fc[0], fc[1])), out[0], out[1])
        x = torch.layer_norm(x, (C,), self.ln_f[0], self.ln_f[1], 1e-5)
        self.length = t + 1
        return F.linear(x, self.tok)[0]


class NumpyDecoder:
    """``CachedDecoder`` with its step in numpy: for a model this small (the part model: d=96, three
    layers) a torch call's overhead is most of a step, and one token through numpy costs a fraction
    of it. The context is still prefilled by torch in one batched pass; ``step`` returns numpy
    logits. The same arithmetic as ``MusicTransformer.forward`` (a test checks they agree).
    """

    def __init__(self, model: MusicTransformer) -> None:
        c = model.config
        self.config = c
        self.model = model
        self.n_head, self.head_size = c.n_head, c.n_embd // c.n_head

        def arr(t: torch.Tensor) -> np.ndarray:
            return t.detach().float().numpy().copy()

        self.tok = arr(model.tok.weight)
        self.pos = arr(model.pos.weight)
        self.layers = [(
            (arr(b.ln1.weight), arr(b.ln1.bias)),
            (arr(b.attn.qkv.weight).T.copy(), arr(b.attn.qkv.bias)),
            (arr(b.attn.proj.weight).T.copy(), arr(b.attn.proj.bias)),
            (arr(b.ln2.weight), arr(b.ln2.bias)),
            (arr(b.mlp[0].weight).T.copy(), arr(b.mlp[0].bias)),
            (arr(b.mlp[2].weight).T.copy(), arr(b.mlp[2].bias)),
        ) for b in model.blocks]
        self.ln_f = (arr(model.ln_f.weight), arr(model.ln_f.bias))
        self.head = self.tok.T.copy()  # the tied output head, (C, vocab)
        shape = (c.n_head, c.block_size, self.head_size)
        self.k = [np.zeros(shape, np.float32) for _ in range(c.n_layer)]  # (nh, T, hs)
        self.v = [np.zeros(shape, np.float32) for _ in range(c.n_layer)]
        self.length = 0
        self.scale = np.float32(1.0 / math.sqrt(self.head_size))

    @torch.inference_mode()
    def reset(self, tokens: list[int]) -> np.ndarray:
        """Start over with a context (one batched torch pass); return the logits (vocab,) after it."""
        if not 0 < len(tokens) <= self.config.block_size:
            raise ValueError(f"a context of 1-{self.config.block_size} tokens is needed, got {len(tokens)}")
        logits, caches = self.model.prefill(torch.tensor([tokens]))
        for keys, values, (k, v) in zip(self.k, self.v, caches, strict=True):
            keys[:, : len(tokens)] = k[0].numpy()  # (nh, T, hs)
            values[:, : len(tokens)] = v[0].numpy()
        self.length = len(tokens)
        return logits[0].numpy()

    @staticmethod
    def _norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        d = x - x.sum() / x.size  # sums, not .mean(): numpy's mean costs more than the arithmetic here
        return d * (1.0 / math.sqrt(float(d @ d) / x.size + 1e-5)) * weight + bias

    def step(self, token: int) -> np.ndarray:
        """Feed one token; return the logits (vocab,) for the next."""
        from scipy.special import erf

        t = self.length
        if t >= self.config.block_size:
            raise ValueError(f"context is full ({self.config.block_size} tokens)")
        nh, hs = self.n_head, self.head_size
        x = self.tok[token] + self.pos[t]  # (C,)
        for (ln1, qkv, proj, ln2, fc, out), keys, values in zip(self.layers, self.k, self.v, strict=True):
            q, k, v = (self._norm(x, *ln1) @ qkv[0] + qkv[1]).reshape(3, nh, hs)
            keys[:, t] = k
            values[:, t] = v
            scores = np.matmul(keys[:, : t + 1], q[:, :, None])[:, :, 0] * self.scale  # (nh, T)
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            att = scores / scores.sum(axis=1, keepdims=True)
            y = np.matmul(att[:, None, :], values[:, : t + 1]).reshape(-1)  # (nh, 1, hs) -> (C,)
            x = x + y @ proj[0] + proj[1]
            h = self._norm(x, *ln2) @ fc[0] + fc[1]
            x = x + (0.5 * h * (1.0 + erf(h / np.float32(math.sqrt(2.0))))) @ out[0] + out[1]
        self.length = t + 1
        return self._norm(x, *self.ln_f) @ self.head
