"""Stems: one float32 buffer per part, all the same length, sample 0 = the first downbeat."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Stems:
    """Rendered audio: ``parts`` maps a part name to a (frames, channels) float32 array."""

    sample_rate: int
    parts: dict[str, np.ndarray]
    mix: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.mix.shape[0])

    @property
    def channels(self) -> int:
        return int(self.mix.shape[1])
