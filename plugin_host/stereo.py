"""A stereo image per part that survives a mono fold: width from a side signal only, then a pan.

``widen`` adds a side signal made from the part's own mid by a velvet-noise decorrelator (a few
sparse taps of random sign, 1-23 ms: Alary, Politis and Välimäki, "Velvet-noise decorrelator",
DAFx 2017), high-passed (4th order, 120 Hz) so the low end stays centred. The side is added to
the left channel and subtracted from the right, so L + R, the mono fold, is exactly what it was:
widening can never make a part cancel in mono. ``width`` is the part's side level relative to its
mid that ``widen`` aims for (0 leaves the part alone); a part wider than MAX_PART_WIDTH is narrowed
to it, its mid untouched.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import butter, sosfilt

from plugin_host.effects import pan_gains

TAPS = 10
SPREAD_SECONDS = (0.001, 0.023)
SIDE_HIGHPASS_HZ = 120.0
MAX_PART_WIDTH = 0.85  # side/mid level: a part's mono fold is then at most 10*log10(1 + 0.85^2) = 2.3 dB down


@lru_cache(maxsize=8)
def _decorrelator(sample_rate: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Velvet-noise taps: (delays in samples, gains) with unit total energy, decaying over the spread."""
    rng = np.random.default_rng(seed)
    low, high = (round(s * sample_rate) for s in SPREAD_SECONDS)
    delays = np.sort(rng.choice(np.arange(low, high), size=TAPS, replace=False))
    gains = rng.choice([-1.0, 1.0], size=TAPS) * np.exp(-np.linspace(0, 2.0, TAPS))
    return delays, gains / np.sqrt(np.sum(gains ** 2))


@lru_cache(maxsize=4)
def _side_filter(sample_rate: int) -> np.ndarray:
    return butter(4, SIDE_HIGHPASS_HZ, "highpass", fs=sample_rate, output="sos").astype(np.float32)


def widen(audio: np.ndarray, width: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """``audio`` (frames, 2) brought to a side/mid level ratio of ``width`` above 120 Hz; L + R unchanged.

    A part narrower than that gets a decorrelated side added (from its own mid); a part already
    wider than MAX_PART_WIDTH (a stereo-sampled piano, a reverb) has its side scaled down to it,
    so its mono fold stays within MONO_FOLD_DB of its stereo level.
    """
    if width <= 0.0:
        return audio
    # measured above the side's high-pass, where the side lives: a kick's energy below it must not
    # license a side louder than the hats and snare it would come from. One filter pass over mid and
    # side; the added side is made from the filtered mid (filter and decorrelator commute).
    # float32, channel-contiguous: this runs on every stem of every render
    lr = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).T)
    mid_side = np.empty_like(lr)
    np.add(lr[0], lr[1], out=mid_side[0])
    np.subtract(lr[0], lr[1], out=mid_side[1])
    mid_side *= np.float32(0.5)
    high = sosfilt(_side_filter(sample_rate), mid_side, axis=-1)
    mid_energy = float(np.dot(high[0], high[0]))
    if mid_energy <= 0.0:
        return audio
    have = float(np.dot(high[1], high[1])) / mid_energy
    want = min(width, MAX_PART_WIDTH) ** 2
    if have > MAX_PART_WIDTH ** 2:
        side = (lr[0] - lr[1]) * np.float32((1 - np.sqrt(MAX_PART_WIDTH ** 2 / have)) / 2)
        return _interleave(lr, -side)
    if have >= want:
        return audio
    mid = high[0]
    delays, gains = _decorrelator(sample_rate, seed)
    side = np.zeros_like(mid)
    tap = np.empty_like(mid)
    for delay, gain in zip(delays, gains, strict=True):
        np.multiply(mid[:len(mid) - delay], np.float32(gain), out=tap[:len(mid) - delay])
        side[delay:] += tap[:len(mid) - delay]
    energy = float(np.dot(side, side))
    if energy <= 0.0:
        return audio
    side *= np.float32(np.sqrt((want - have) * mid_energy / energy))
    return _interleave(lr, side)


def _interleave(lr: np.ndarray, side: np.ndarray) -> np.ndarray:
    """(frames, 2) from channel rows ``lr`` with ``side`` added to the left and taken from the right."""
    out = np.empty((lr.shape[1], 2), dtype=np.float32)
    np.add(lr[0], side, out=out[:, 0])
    np.subtract(lr[1], side, out=out[:, 1])
    return out


def pan(audio: np.ndarray, position: float) -> np.ndarray:
    """Constant-power pan of a stereo part, -1 (left) .. 1 (right)."""
    if position == 0.0:
        return audio
    return audio * np.asarray(pan_gains(position), dtype=np.float32)


def width_of(audio: np.ndarray) -> float:
    """Side over mid energy: 0 for mono, 1 for uncorrelated channels of equal level."""
    x = np.asarray(audio, dtype=np.float64)
    mid = (x[:, 0] + x[:, 1]) / 2
    side = (x[:, 0] - x[:, 1]) / 2
    return float(np.sum(side ** 2) / max(np.sum(mid ** 2), 1e-30))
