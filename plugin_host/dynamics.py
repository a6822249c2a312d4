"""Keep the music's dynamics through compression: a crescendo or a fade stays as loud as it was played.

A compressor with a fast attack shapes transients (what a drum bus is for), but it also flattens
the slow rise of a crescendo: a 20:1 peak compressor on the drums turned a 6 dB build in the
strings into 2.2 dB in the mix. ``keep_arc`` measures the slow loudness envelope (windows of
ARC_WINDOW_SECONDS: longer than a note, shorter than a build) before and after a chain and rides a
smooth gain so the processed part follows the unprocessed one's envelope again, its overall level
unchanged: the chain keeps its effect on each hit, the part keeps its crescendo.

``velocity_ride_db`` goes one step further on the mix bus, as a producer rides a fader through a build: the
score's own dynamics (mean velocity per bar) move the mix by DYNAMICS_RIDE dB per dB of velocity.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

from plugin_host.config import ARC_MAX_DB, ARC_WINDOW_SECONDS, DYNAMICS_RIDE

FLOOR = 1e-10


ARC_HOP = 256  # frames per power measurement: the envelope moves over seconds, so 5 ms steps lose nothing


def _envelope(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Slow mean power, one value per ARC_HOP frames (a moving average over ARC_WINDOW_SECONDS)."""
    x = np.asarray(audio, dtype=np.float32)
    frames, channels = x.shape
    full = frames // ARC_HOP
    whole = x[:full * ARC_HOP].reshape(full, ARC_HOP * channels)
    power = np.einsum("ij,ij->i", whole, whole).astype(np.float64) / ARC_HOP
    if frames % ARC_HOP:  # the last hop holds fewer frames
        rest = x[full * ARC_HOP:]
        power = np.append(power, float(np.sum(np.square(rest, dtype=np.float64))) / len(rest))
    return uniform_filter1d(power, size=max(1, round(ARC_WINDOW_SECONDS * sample_rate / ARC_HOP)), mode="nearest")


def keep_arc(before: np.ndarray, after: np.ndarray, sample_rate: int) -> np.ndarray:
    """``after`` with a smooth gain that restores ``before``'s slow loudness envelope (level kept).

    The envelopes are measured per ARC_HOP frames and the gain interpolated between hop centres:
    one multiply per sample, the rest costs a few thousand values."""
    if after.shape[0] < 2 or not np.any(after):
        return after
    dry, wet = _envelope(before, sample_rate), _envelope(after, sample_rate)
    active = (dry > FLOOR) & (wet > FLOOR)
    if not active.any():
        return after
    ratio_db = np.zeros_like(dry)
    ratio_db[active] = 10 * np.log10(dry[active] / wet[active])
    # only the change across the clip matters: the level is set by the mix's gain staging
    weights = wet * active
    ratio_db -= np.sum(ratio_db * weights) / np.sum(weights)
    ratio_db = np.clip(ratio_db, -ARC_MAX_DB, ARC_MAX_DB)
    ratio_db[~active] = 0.0
    smooth = uniform_filter1d(ratio_db, size=max(1, round(ARC_WINDOW_SECONDS * sample_rate / ARC_HOP)),
                              mode="nearest")
    gain = _between_centres((10 ** (smooth / 20)).astype(np.float32), after.shape[0])
    return np.asarray(after, dtype=np.float32) * gain[:, None]


def _between_centres(values: np.ndarray, frames: int) -> np.ndarray:
    """Per frame, ``values`` (one per ARC_HOP frames, at the hop's centre) interpolated linearly between
    centres and held before the first and after the last (what np.interp does, a hop at a time)."""
    half = (ARC_HOP - 1) / 2
    offsets = (np.arange(ARC_HOP, dtype=np.float32) - np.float32(half)) / np.float32(ARC_HOP)
    # frame k * ARC_HOP + j lies `offsets[j]` hops from centre k: after it (>= 0) towards k + 1, before it towards k - 1
    ahead = np.append(values[1:], values[-1])
    behind = np.insert(values[:-1], 0, values[0])
    after_centre = offsets >= 0
    lerp = np.where(after_centre, values[:, None] + (ahead - values)[:, None] * offsets,
                    values[:, None] + (values - behind)[:, None] * offsets)
    gain = lerp.reshape(-1)[:frames]
    if len(gain) < frames:
        gain = np.append(gain, np.full(frames - len(gain), values[-1], dtype=np.float32))
    return gain.astype(np.float32, copy=False)


def velocity_ride_db(bar_velocities: list[float], bar_frames: list[tuple[int, int]], frames: int,
                     sample_rate: int) -> np.ndarray:
    """Per-sample mix gain (dB) following the score's mean velocity per bar, centred on 0 dB, smoothed.

    ``bar_velocities`` holds each bar's mean velocity (0 for a bar without notes, left at 0 dB) and
    ``bar_frames`` its (start, stop) frames."""
    ride = np.zeros(frames)
    played = [v for v in bar_velocities if v > 0]
    if len(played) < 2 or DYNAMICS_RIDE <= 0:
        return ride
    reference = float(np.exp(np.mean(np.log(played))))
    for velocity, (start, stop) in zip(bar_velocities, bar_frames, strict=True):
        if velocity > 0:
            ride[start:min(stop, frames)] = DYNAMICS_RIDE * 20 * np.log10(velocity / reference)
    last = min(frames, bar_frames[-1][1]) if bar_frames else 0
    ride[last:] = ride[last - 1] if last else 0.0
    return uniform_filter1d(ride, size=max(1, round(0.5 * sample_rate)), mode="nearest")
