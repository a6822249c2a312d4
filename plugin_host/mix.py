"""The mix: stems summed at their role's gain, loudness set to a target, true peak under a ceiling.

Loudness is ITU-R BS.1770-4 integrated loudness (pyloudnorm). The true peak is estimated by
4x oversampling (BS.1770-4 Annex 2). When reaching the loudness target would push the true
peak over the ceiling, a look-ahead peak limiter computes one gain curve from the mix and
applies it to every stem as well, so the stems still add up to the mix.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyloudnorm
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import firwin

from plugin_host.config import (
    LIMITER_LOOKAHEAD_SECONDS,
    LIMITER_RELEASE_SECONDS,
    MASTER_PASSES,
    TRUE_PEAK_BLOCK,
    TRUE_PEAK_CEILING_DBTP,
    TRUE_PEAK_MARGIN_DB,
    TRUE_PEAK_OVERSAMPLE,
    TRUE_PEAK_TAPS,
)

SILENCE_LUFS = -70.0  # BS.1770's absolute gate: below it there is nothing to normalise


@dataclass(frozen=True)
class MasterReport:
    """What mastering did and measured, for logs and the CLI."""

    loudness_lufs: float
    true_peak_dbtp: float
    gain_db: float
    limited_db: float  # deepest gain reduction of the limiter (0 = untouched)


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def _true_peak_phases() -> np.ndarray:
    """BS.1770-4 Annex 2's structure: a 48-tap interpolation filter as 4 phases of 12 taps, (4, 12)."""
    taps = firwin(TRUE_PEAK_TAPS, 1.0 / TRUE_PEAK_OVERSAMPLE, window=("kaiser", 5.0)) * TRUE_PEAK_OVERSAMPLE
    return np.stack([taps[phase::TRUE_PEAK_OVERSAMPLE] for phase in range(TRUE_PEAK_OVERSAMPLE)]).astype(np.float32)


_PHASES = _true_peak_phases()
_TAPS_PER_PHASE = _PHASES.shape[1]
_DELAY = round((TRUE_PEAK_TAPS - 1) / 2 / TRUE_PEAK_OVERSAMPLE)  # filter delay, in original samples
# No interpolated value can exceed the largest input magnitude in its window times this.
_OVERSHOOT_BOUND = float(np.abs(_PHASES).sum(axis=1).max())


def true_peak_envelope(audio: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Per original sample, the largest magnitude of the 4x-oversampled signal near it (all channels).

    Polyphase interpolation: each of the 4 phases is a 12-tap FIR of the input. Blocks too quiet
    for any interpolated value to reach ``floor`` keep their samples' own magnitude, which spares
    the filter on most of a mix when only the loud parts matter (the limiter, the peak).
    """
    frames = audio.shape[0]
    if frames == 0:
        return np.zeros(0, dtype=np.float32)
    x = np.asarray(audio, dtype=np.float32)
    envelope = np.abs(x).max(axis=1)
    block = TRUE_PEAK_BLOCK
    for start in range(0, frames, block):
        stop = min(frames, start + block)
        lo, hi = max(0, start - _TAPS_PER_PHASE), min(frames, stop + _TAPS_PER_PHASE)
        if float(envelope[lo:hi].max()) * _OVERSHOOT_BOUND <= floor:
            continue  # nothing in reach of this block can interpolate up to the floor
        for channel in range(x.shape[1]):
            for phase in _PHASES:
                # phase sample n = sum_k h[k] x[n + DELAY - k]: full convolution, shifted by the delay
                y = np.convolve(x[lo:hi, channel], phase)[start - lo + _DELAY:stop - lo + _DELAY]
                np.maximum(envelope[start:start + len(y)], np.abs(y), out=envelope[start:start + len(y)])
    return envelope


def true_peak_dbtp(audio: np.ndarray) -> float:
    """Oversampled true-peak level in dBTP (-inf for silence)."""
    sample_peak = float(np.abs(audio).max()) if audio.size else 0.0
    envelope = true_peak_envelope(audio, floor=sample_peak)
    peak = float(envelope.max()) if envelope.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """BS.1770-4 integrated loudness in LUFS (-inf for silence or clips shorter than one 400 ms block)."""
    if audio.shape[0] < int(0.4 * sample_rate) + 1:
        return float("-inf")
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(audio.astype(np.float64)))


def limiter_gain(audio: np.ndarray, sample_rate: int, ceiling: float) -> np.ndarray:
    """A smooth per-sample gain (<= 1) that keeps the oversampled peak of ``audio`` under ``ceiling``.

    Look-ahead: the gain starts falling ``LIMITER_LOOKAHEAD_SECONDS`` before a peak and recovers
    over ``LIMITER_RELEASE_SECONDS``; a centred minimum filter followed by a shorter moving average
    never lets the gain at any sample exceed what that sample needs.
    """
    need = np.minimum(1.0, ceiling / np.maximum(true_peak_envelope(audio, floor=ceiling), 1e-12))
    if need.min() >= 1.0:
        return np.ones(audio.shape[0])
    hold = max(1, round(LIMITER_RELEASE_SECONDS * sample_rate))
    smooth = max(1, round(LIMITER_LOOKAHEAD_SECONDS * sample_rate))
    held = minimum_filter1d(need, size=2 * hold + 1, mode="nearest")
    return np.minimum(uniform_filter1d(held, size=min(smooth, hold) + 1, mode="nearest"), need)


def sum_stems(parts: dict[str, np.ndarray], gains_db: dict[str, float]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Apply each stem's fader and add them up; returns (stems at gain, mix)."""
    scaled = {name: audio * np.float32(db_to_gain(gains_db.get(name, 0.0))) for name, audio in parts.items()}
    mix = np.sum(list(scaled.values()), axis=0, dtype=np.float64) if scaled else np.zeros((0, 2))
    return scaled, mix


def master(parts: dict[str, np.ndarray], mix: np.ndarray, sample_rate: int, target_lufs: float,
           ceiling_dbtp: float = TRUE_PEAK_CEILING_DBTP) -> tuple[dict[str, np.ndarray], np.ndarray, MasterReport]:
    """Bring ``mix`` to ``target_lufs`` with its true peak under ``ceiling_dbtp``; stems follow every gain."""
    ceiling = db_to_gain(ceiling_dbtp - TRUE_PEAK_MARGIN_DB)
    gain = np.ones(mix.shape[0])
    total_db, deepest = 0.0, 1.0
    work = mix.astype(np.float64)
    for _ in range(MASTER_PASSES):
        loudness = integrated_loudness(work, sample_rate)
        if not np.isfinite(loudness) or loudness < SILENCE_LUFS:
            break
        step = target_lufs - loudness
        if abs(step) < 0.05 and true_peak_dbtp(work) <= ceiling_dbtp - TRUE_PEAK_MARGIN_DB / 2:
            break
        total_db += step
        work = work * db_to_gain(step)
        gain = gain * db_to_gain(step)
        limit = limiter_gain(work, sample_rate, ceiling)
        deepest = min(deepest, float(limit.min()))
        work = work * limit[:, None]
        gain = gain * limit
    # A last safety pass so the ceiling holds whatever the loudness loop left.
    limit = limiter_gain(work, sample_rate, ceiling)
    work, gain = work * limit[:, None], gain * limit
    deepest = min(deepest, float(limit.min()))
    out_parts = {name: (audio * gain[:, None]).astype(np.float32) for name, audio in parts.items()}
    out_mix = work.astype(np.float32)
    report = MasterReport(loudness_lufs=integrated_loudness(out_mix, sample_rate),
                          true_peak_dbtp=true_peak_dbtp(out_mix), gain_db=total_db,
                          limited_db=20.0 * np.log10(max(deepest, 1e-12)))
    return out_parts, out_mix, report
