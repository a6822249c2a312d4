"""The model's incremental decoder computes what the full forward pass computes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.model.transformer import CachedDecoder, ModelConfig, MusicTransformer, NumpyDecoder, from_checkpoint


def test_cached_decoder_matches_the_forward_pass() -> None:
    torch.manual_seed(0)
    model = MusicTransformer(ModelConfig(vocab_size=50, block_size=32, n_layer=2, n_head=2, n_embd=16)).eval()
    tokens = torch.randint(0, 50, (1, 20))
    full, _ = model(tokens)
    decoder = CachedDecoder(model)
    stepped = torch.stack([decoder.step(int(t)) for t in tokens[0]])
    assert torch.allclose(stepped, full[0], atol=1e-5)
    assert torch.allclose(decoder.reset(tokens[0, :5].tolist()), full[0, 4], atol=1e-5)


def test_the_numpy_decoder_matches_the_forward_pass() -> None:
    torch.manual_seed(1)
    model = MusicTransformer(ModelConfig(vocab_size=50, block_size=32, n_layer=3, n_head=4, n_embd=32)).eval()
    tokens = torch.randint(0, 50, (1, 24))
    full, _ = model(tokens)
    decoder = NumpyDecoder(model)
    stepped = np.stack([decoder.step(int(t)) for t in tokens[0]])
    np.testing.assert_allclose(stepped, full[0].detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(decoder.reset(tokens[0, :5].tolist()), full[0, 4].detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(decoder.step(int(tokens[0, 5])), full[0, 5].detach().numpy(), atol=1e-4)  # after a reset


@pytest.mark.parametrize("decoder_type", [CachedDecoder, NumpyDecoder])
def test_the_context_cannot_overflow(decoder_type) -> None:
    model = MusicTransformer(ModelConfig(vocab_size=10, block_size=4, n_layer=1, n_head=1, n_embd=8)).eval()
    decoder = decoder_type(model)
    decoder.reset([1, 2, 3, 4])
    with pytest.raises(ValueError, match="context is full"):
        decoder.step(5)
    with pytest.raises(ValueError, match="longer than the block size"):
        model(torch.zeros(1, 5, dtype=torch.long))


def test_a_checkpoint_that_does_not_fit_is_refused() -> None:
    model = MusicTransformer(ModelConfig(vocab_size=10, block_size=4, n_layer=1, n_head=1, n_embd=8))
    state = {k: v for k, v in model.state_dict().items() if k != "head.weight"}
    state["blocks.0.extra"] = torch.zeros(1)
    with pytest.raises(ValueError, match="does not fit"):
        from_checkpoint({"model_config": model.config.to_dict(), "state_dict": state})
