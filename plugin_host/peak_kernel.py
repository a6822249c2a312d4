"""The true-peak interpolation, compiled: the inner loop of plugin_host/mix.py's oversampled peak.

Each output frame takes 4 phases x 12 taps x 2 channels of multiply-adds; numba compiles them to vector
instructions, a block of frames at a time in cache, and releases the GIL, so the mix and the stems are
measured side by side. The compiled code is kept in numba's cache (``__pycache__`` beside this file, or
the user's cache folder), so a process after the first loads it instead of compiling it; the render
worker imports this module while it warms up, before a render waits for it.
"""
from __future__ import annotations

import numpy as np
from numba import njit

BLOCK = 2048  # frames per pass: the window and the phase sums stay in the CPU's cache
SIGNATURE = "float32[:](float32[:, :], int64, int64, float32[:, :], float32[:])"


@njit(nogil=True, inline="always")
def _accumulate(total, weight, signal):
    for n in range(total.shape[0]):
        total[n] += weight * signal[n]


@njit(nogil=True, inline="always")
def _clear(values):
    for n in range(values.shape[0]):
        values[n] = 0.0


@njit(nogil=True, inline="always")
def _keep_larger_magnitude(peak, values):
    for n in range(peak.shape[0]):
        peak[n] = max(peak[n], abs(values[n]))


def _interpolated_peak(x, start, stop, phases, peak):
    """``peak`` (frames start..stop) raised to the largest magnitude, over channels and phases, of the
    polyphase interpolation of ``x`` ((frames, channels) float32): phase p at frame n is
    sum_k phases[p, k] * x[n + taps // 2 - k], with x zero outside its frames (as scipy's convolve1d in
    "constant" mode). Returns ``peak``."""
    frames, channels = x.shape
    phase_count, taps = phases.shape
    half = taps // 2
    window = np.zeros(BLOCK + taps - 1, dtype=np.float32)
    total = np.empty(BLOCK, dtype=np.float32)
    for first in range(start, stop, BLOCK):
        count = min(stop, first + BLOCK) - first
        best = peak[first - start:first - start + count]
        origin = first + half - (taps - 1)  # window[j] is x[origin + j]: zero outside the signal
        for channel in range(channels):
            for j in range(count + taps - 1):
                frame = origin + j
                window[j] = x[frame, channel] if 0 <= frame < frames else np.float32(0.0)
            for phase in range(phase_count):
                sums = total[:count]
                _clear(sums)
                for k in range(taps):  # sums[n] += h[k] * x[n + half - k], slices instead of indexes: vectorised
                    _accumulate(sums, phases[phase, k], window[taps - 1 - k:taps - 1 - k + count])
                _keep_larger_magnitude(best, sums)
    return peak


try:
    interpolated_peak = njit(SIGNATURE, nogil=True, cache=True)(_interpolated_peak)
except RuntimeError:  # numba found no folder it may write its cache to: compiled in every process instead
    interpolated_peak = njit(SIGNATURE, nogil=True)(_interpolated_peak)
