"""The engine's own MiniLM encoder against transformers' BertModel on the same packaged weights."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from engine.understand import embed
from engine.understand.minilm import MiniLM

SENTENCES = ["Dramatic orchestral piece, soft and slow at first, building to a powerful crescendo",
             "Upbeat ragtime piano in 7/4", "lofi", "a much longer sentence " * 40]  # the last is cut at 128 tokens


def test_the_encoder_gives_transformers_hidden_states_and_the_packaged_embeddings() -> None:
    from transformers import AutoModel, AutoTokenizer

    path = Path(embed.model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    reference = AutoModel.from_pretrained(path, local_files_only=True).eval()
    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=embed.MAX_TOKENS, return_tensors="pt")
    ours = MiniLM.load(path)
    with torch.inference_mode():
        expected = reference(**batch).last_hidden_state
    got = ours(batch["input_ids"].numpy(), batch["attention_mask"].numpy())
    mask = batch["attention_mask"].bool()
    assert np.abs(got[mask.numpy()] - expected[mask].numpy()).max() < 1e-4

    mean = (expected * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    expected_embeddings = torch.nn.functional.normalize(mean, dim=1).numpy()
    embeddings = embed.encode(SENTENCES)
    assert embeddings.shape == (4, 384)
    assert np.abs(embeddings - expected_embeddings).max() < 1e-4
