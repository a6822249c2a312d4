"""The mix: stems summed at their role's gain, loudness set to a target, true peak under a ceiling.

Loudness is ITU-R BS.1770-4 integrated loudness (pyloudnorm). The true peak is estimated by
4x oversampling (BS.1770-4 Annex 2). When reaching the loudness target would push the true
peak over the ceiling, a look-ahead peak limiter computes one gain curve from the mix and
applies it to every stem as well, so the stems still add up to the mix.
"""
from __future__ import annotations

import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyloudnorm
from scipy.ndimage import maximum_filter1d, uniform_filter1d
from scipy.signal import firwin, sosfilt

from plugin_host.config import (
    LIMITER_LOOKAHEAD_SECONDS,
    LIMITER_RELEASE_SECONDS,
    MASTER_PASSES,
    RENDER_THREADS,
    SECTION_ROLES,
    TRUE_PEAK_BLOCK,
    TRUE_PEAK_CEILING_DBTP,
    TRUE_PEAK_MARGIN_DB,
    TRUE_PEAK_OVERSAMPLE,
    TRUE_PEAK_TAPS,
)

SILENCE_LUFS = -70.0  # BS.1770's absolute gate: below it there is nothing to normalise
MAX_LIMITING_DB = 24.0  # the master's gain search goes at most this far past the gain that needs no limiting


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
# No interpolated value can exceed the largest input magnitude in its window times this.
_OVERSHOOT_BOUND = float(np.abs(_PHASES).sum(axis=1).max())


def true_peak_envelope(audio: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Per original sample, the largest magnitude of the 4x-oversampled signal near it (all channels).

    Polyphase interpolation: each of the 4 phases is a 12-tap FIR of the input. Blocks too quiet
    for any interpolated value to reach ``floor`` keep their samples' own magnitude, which spares
    the filter on most of a mix when only the loud parts matter (the limiter, the peak).
    """
    return _true_peak(audio, floor)[0]


def _block_max(values: np.ndarray) -> np.ndarray:
    """The maximum of ``values`` per TRUE_PEAK_BLOCK frames (the last block may be short)."""
    block = TRUE_PEAK_BLOCK
    blocks = -(-values.shape[0] // block)
    padded = np.zeros(blocks * block, dtype=values.dtype)
    padded[:values.shape[0]] = values
    return padded.reshape(blocks, block).max(axis=1)


def _block_peak(audio: np.ndarray) -> np.ndarray:
    """The largest magnitude of a (frames, channels) signal per TRUE_PEAK_BLOCK frames, all channels.

    Reduced over whole blocks of frames x channels at once (one long axis per block: numpy's
    max over a 2-sample axis costs ten times as much), as max and -min (no |x| copy)."""
    x = np.asarray(audio, dtype=np.float32)
    frames = x.shape[0]
    if frames == 0:
        return np.zeros(0, dtype=np.float32)
    block = TRUE_PEAK_BLOCK
    full = frames // block
    rows = x[:full * block].reshape(full, -1)
    peak = np.maximum(rows.max(axis=1), -rows.min(axis=1)) if full else np.zeros(0, dtype=np.float32)
    if frames % block:
        rest = x[full * block:]
        peak = np.append(peak, max(float(rest.max()), -float(rest.min())))
    return peak.astype(np.float32, copy=False)


def _true_peak(audio: np.ndarray, floor: float = 0.0,
               only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``true_peak_envelope`` and, per block, an upper bound of the true peak in it (exact where the block
    was interpolated, the sample peak times _OVERSHOOT_BOUND where not). ``only`` (a bool per block)
    restricts the interpolation to those blocks."""
    frames = audio.shape[0]
    if frames == 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
    x = np.asarray(audio, dtype=np.float32)
    envelope = np.abs(x[:, 0])
    for channel in range(1, x.shape[1]):  # channel by channel: numpy's max over a short axis is slow
        np.maximum(envelope, np.abs(x[:, channel]), out=envelope)
    block = TRUE_PEAK_BLOCK
    block_peak = _block_max(envelope)
    upper = block_peak * np.float32(_OVERSHOOT_BOUND)
    # a block needs interpolating if it, or a neighbour within the filter's reach, is loud enough
    reach = np.maximum(block_peak, np.maximum(np.roll(block_peak, 1), np.roll(block_peak, -1)))
    wanted = reach * _OVERSHOOT_BOUND > floor
    if only is not None:
        wanted &= only
    loud = np.flatnonzero(wanted)
    if loud.size == 0:
        return envelope, upper
    # runs of consecutive loud blocks, each interpolated in one go
    breaks = np.flatnonzero(np.diff(loud) > 1)
    for first, last in zip(np.r_[loud[0], loud[breaks + 1]], np.r_[loud[breaks], loud[-1]], strict=True):
        start, stop = int(first) * block, min(frames, (int(last) + 1) * block)
        _raise_to_interpolated_peak(envelope[start:stop], x, start, stop)
    upper[loud] = _block_max(envelope)[loud]
    return envelope, upper


def _raise_to_interpolated_peak(peak: np.ndarray, x: np.ndarray, start: int, stop: int) -> None:
    """``peak`` (frames start..stop, float32) raised in place to the largest magnitude over channels and the 4
    phases of the interpolated signal (float32 ``x``)."""
    # phase sample n = sum_k h[k] x[n + DELAY - k], DELAY = 6 = 12 // 2; compiled (numba), imported here so
    # that only the processes that master load numba (the engine imports this module for the render API)
    from plugin_host.peak_kernel import interpolated_peak

    interpolated_peak(x, start, stop, _PHASES, peak)


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


class _Limiter:
    """Look-ahead limiter curves for one true-peak ``envelope`` under any make-up gain: the gain starts falling
    ``LIMITER_LOOKAHEAD_SECONDS`` before a peak and recovers over ``LIMITER_RELEASE_SECONDS``; a centred
    minimum filter followed by a shorter moving average never lets the gain at any sample exceed what that
    sample needs. The minimum filter of the need under a gain is the need of the envelope's maximum filter,
    so that filter runs once for every gain the master tries."""

    def __init__(self, envelope: np.ndarray, sample_rate: int) -> None:
        self.envelope = np.maximum(envelope.astype(np.float64), 1e-12)
        self.hold = max(1, round(LIMITER_RELEASE_SECONDS * sample_rate))
        self.smooth = max(1, round(LIMITER_LOOKAHEAD_SECONDS * sample_rate))
        self._peaks: np.ndarray | None = None

    def gain(self, make_up: float, ceiling: float) -> np.ndarray:
        """The per-sample gain (<= 1) that keeps ``make_up`` times the envelope under ``ceiling``."""
        need = np.minimum(1.0, (ceiling / make_up) / self.envelope)
        if need.min() >= 1.0:
            return np.ones(self.envelope.shape[0])
        if self._peaks is None:
            self._peaks = maximum_filter1d(self.envelope, size=2 * self.hold + 1, mode="nearest")
        held = np.minimum(1.0, (ceiling / make_up) / self._peaks)
        return np.minimum(uniform_filter1d(held, size=min(self.smooth, self.hold) + 1, mode="nearest"), need)


def limiter_gain(envelope: np.ndarray, sample_rate: int, ceiling: float) -> np.ndarray:
    """A smooth per-sample gain (<= 1) that keeps a true-peak ``envelope`` under ``ceiling`` (_Limiter)."""
    return _Limiter(envelope, sample_rate).gain(1.0, ceiling)


def part_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """A stem's BS.1770 integrated loudness (LUFS) for gain staging; -inf when shorter than one 400 ms block."""
    enough = audio.shape[0] > round(0.4 * sample_rate)
    return _LoudnessModel(audio, sample_rate).loudness(1.0) if enough else float("-inf")


def stage_gains(parts: dict[str, np.ndarray], levels_lufs: dict[str, float], sample_rate: int,
                measured: dict[str, float] | None = None) -> dict[str, float]:
    """Per stem, the gain (dB) that brings its integrated loudness to its role's level; 0 for silent stems.

    Gain staging by loudness, not by fixed faders: General MIDI samples differ by 10 dB and more
    in level from one program to the next, so a fixed fader cannot keep a bass next to its kick.
    ``measured`` holds stems' ``part_loudness`` taken already (the render measures each part as it comes).
    """
    measured = dict(measured or {})
    todo = [name for name in parts if name not in measured]
    with ThreadPoolExecutor(max_workers=RENDER_THREADS) as pool:  # scipy's filter releases the GIL
        measured.update(zip(todo, pool.map(lambda name: part_loudness(parts[name], sample_rate), todo),
                            strict=True))
    gains = {}
    for name in parts:
        level, loudness = levels_lufs.get(name), measured[name]
        gains[name] = level - loudness if level is not None and np.isfinite(loudness) and loudness > SILENCE_LUFS \
            else 0.0
    return gains


def section_levels(levels_lufs: dict[str, float], roles: dict[str, str]) -> dict[str, float]:
    """Each stem's level when its role is a section (SECTION_ROLES): n stems of it (congas, timbales and
    a kit; taiko and trailer hits) each sit 10*log10(n) dB under the role's level, so together they make
    its loudness instead of n times it (three percussion stems at the drum level buried a salsa's piano)."""
    counts = Counter(roles.get(name) for name in levels_lufs)
    return {name: level - 10.0 * math.log10(counts[roles.get(name)]) if roles.get(name) in SECTION_ROLES
            else level for name, level in levels_lufs.items()}


def sum_stems(parts: dict[str, np.ndarray], gains_db: dict[str, float],
              ride: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Apply each stem's gain (and the bus ``ride``, a per-frame gain every stem shares) and add them up;
    returns (stems at gain, mix). One multiplication per stem, on RENDER_THREADS threads."""
    if not parts:
        return {}, np.zeros((0, 2))

    def scaled(item: tuple[str, np.ndarray]) -> np.ndarray:
        name, audio = item
        gain = np.float32(db_to_gain(gains_db.get(name, 0.0)))
        return audio * (ride * gain)[:, None] if ride is not None else audio * gain

    with ThreadPoolExecutor(max_workers=RENDER_THREADS) as pool:
        out = dict(zip(parts, pool.map(scaled, parts.items()), strict=True))
    stems = iter(out.values())
    mix = next(stems).astype(np.float64)  # summed in place: no (stems, frames, 2) stack
    for audio in stems:
        mix += audio
    return out, mix


@lru_cache(maxsize=4)
def _k_weighting(sample_rate: int) -> np.ndarray:
    """BS.1770's K-weighting (pyloudnorm's two biquads: high shelf, then high-pass) as one SOS array,
    so one scipy call filters every channel."""
    stages = (pyloudnorm.IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sample_rate, "high_shelf"),
              pyloudnorm.IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass"))
    return np.array([np.r_[stage.b / stage.a[0], stage.a / stage.a[0]] for stage in stages])


class _LoudnessModel:
    """BS.1770-4 integrated loudness of ``mix`` under a slowly varying gain curve, without re-filtering.

    The K-weighting filters run once; the loudness of ``gain(t) * mix`` is then taken as the gated
    loudness of ``gain(t)^2 * power(t)``, where power is the K-weighted power of the mix. That is
    exact for a constant gain and very close for a limiter's gain curve (it moves over
    milliseconds; K-weighting's high-pass is at 38 Hz). ``master`` checks the result with pyloudnorm.
    """

    def __init__(self, mix: np.ndarray, sample_rate: int, threads: int = 1) -> None:
        """``threads`` > 1 filters the channels side by side (scipy's filter releases the GIL)."""
        # float32, channel-contiguous (twice as fast as float64 frames-first; well under 0.01 LU apart)
        channels = np.ascontiguousarray(np.asarray(mix, dtype=np.float32).T)
        sos = _k_weighting(sample_rate).astype(np.float32)
        if threads > 1 and len(channels) > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                weighted = np.stack(list(pool.map(lambda channel: sosfilt(sos, channel), channels)))
        else:
            weighted = sosfilt(sos, channels, axis=-1)
        self.power = np.einsum("ij,ij->j", weighted, weighted).astype(np.float64)
        block = round(0.4 * sample_rate)
        step = round(0.1 * sample_rate)
        count = (len(self.power) - block) // step + 1
        self.starts = np.arange(max(0, count)) * step
        self.block = block
        self._unity: np.ndarray | None = None  # block powers under a gain of 1, once asked for

    def loudness(self, gain: np.ndarray | float) -> float:
        """The gated loudness (LUFS) of the mix times ``gain``: a number, or a curve of one value per frame."""
        if self.starts.size == 0:
            return float("-inf")
        if np.ndim(gain) == 0:  # every block's power scales alike: the unity blocks, measured once, scaled
            if self._unity is None:
                self._unity = self._blocks(self.power)
            return _gated(self._unity * float(gain) ** 2)
        return _gated(self._blocks(self.power * np.square(gain)))

    def _blocks(self, weighted: np.ndarray) -> np.ndarray:
        """Mean power of every 400 ms block, a block every 100 ms."""
        total = np.concatenate([[0.0], np.cumsum(weighted)])
        return (total[self.starts + self.block] - total[self.starts]) / self.block


def _gated(z: np.ndarray) -> float:
    """BS.1770's gating of block powers ``z``: absolute at -70 LUFS, then relative at -10 LU."""
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(z)
    gated = z[levels >= -70.0]
    if gated.size == 0:
        return float("-inf")
    relative = -0.691 + 10 * np.log10(gated.mean()) - 10.0
    kept = z[(levels >= -70.0) & (levels > relative)]
    return float(-0.691 + 10 * np.log10(kept.mean())) if kept.size else float("-inf")


def _gain_curve(model: _LoudnessModel, limiter: _Limiter, target_lufs: float,
                ceiling: float) -> tuple[float, np.ndarray]:
    """The make-up gain (dB) and limiter curve whose product brings the model's loudness to the target."""
    def evaluate(gain_db: float) -> tuple[float, np.ndarray]:
        gain = db_to_gain(gain_db)
        limit = limiter.gain(gain, ceiling)
        return model.loudness(gain * limit), limit

    unity = model.loudness(1.0)
    low_db = target_lufs - unity  # the gain that would do it without any limiting
    low_level, limit = evaluate(low_db)
    if abs(low_level - target_lufs) < 0.02:
        return low_db, limit
    # limiting only ever lowers the loudness: search upwards by secant steps
    # A sparse clip (a few short hits) may not reach the target under the ceiling at any gain: the
    # search stops at MAX_LIMITING_DB of limiting past the unlimited gain instead of running away.
    most_db = low_db + MAX_LIMITING_DB
    high_db = min(most_db, low_db + (target_lufs - low_level) * 2.0)
    high_level, limit = evaluate(high_db)
    for _ in range(MASTER_PASSES * 3):
        if abs(high_level - target_lufs) < 0.02 or high_level == low_level:
            break
        next_db = high_db + (target_lufs - high_level) * (high_db - low_db) / (high_level - low_level)
        next_db = min(most_db, next_db)
        if next_db == high_db:
            break
        low_db, low_level = high_db, high_level
        high_db = next_db
        high_level, limit = evaluate(high_db)
    return high_db, limit


def _envelopes(signals: list[np.ndarray], floors: list[float],
               only: list[np.ndarray | None] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``_true_peak`` of each signal, on RENDER_THREADS threads (the compiled interpolation releases the GIL)."""
    with ThreadPoolExecutor(max_workers=RENDER_THREADS) as pool:
        return list(pool.map(_true_peak, signals, floors, only or [None] * len(signals)))


def _joint_envelope(mix: np.ndarray, parts: dict[str, np.ndarray], floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, the highest true-peak envelope of the mix and of every stem; and per block an upper
    bound of it (``_true_peak``).

    The mix's envelope is exact above ``floor``. A stem matters only where it peaks above the mix (where
    parts cancel), so a stem's block is interpolated only where its bound can exceed the mix's sample peak
    in that block (the mix's true peak is at least that); elsewhere its samples stand in (master's check
    after the gain is exact near the ceiling). The mix and the stems are measured side by side.
    """
    mix_peak = _block_peak(mix)
    only = [_block_peak(audio) * np.float32(_OVERSHOOT_BOUND) > mix_peak for audio in parts.values()]
    channels = [mix[:, channel:channel + 1] for channel in range(mix.shape[1])]  # the longest job, split in two
    (envelope, upper), *others = _envelopes([*channels, *parts.values()], [floor] * (len(channels) + len(parts)),
                                            [None] * len(channels) + only)
    for other, other_upper in others:
        np.maximum(envelope, other, out=envelope)
        np.maximum(upper, other_upper, out=upper)
    return envelope, upper


PREDICTION_SLACK_DB = 1.5  # after mastering, blocks predicted this far under a floor are not re-interpolated


def master(parts: dict[str, np.ndarray], mix: np.ndarray, sample_rate: int, target_lufs: float,
           ceiling_dbtp: float = TRUE_PEAK_CEILING_DBTP) -> tuple[dict[str, np.ndarray], np.ndarray, MasterReport]:
    """Bring ``mix`` to ``target_lufs`` with its true peak, and every stem's, under ``ceiling_dbtp``.

    The stems get exactly the mix's gain curve, so they still add up to it.

    One make-up gain and one look-ahead limiter curve, found together: the true-peak envelope
    scales with the gain, so it is measured once, and the loudness under a gain curve comes from
    the K-weighted power measured once (_LoudnessModel). The result is then measured for real
    (pyloudnorm, oversampled peak); if the loudness is off by more than 0.1 LU the target is
    corrected and the search repeated.
    """
    ceiling = db_to_gain(ceiling_dbtp - TRUE_PEAK_MARGIN_DB)
    work = np.asarray(mix, dtype=np.float64)  # read only: every step below makes new arrays
    model = _LoudnessModel(work, sample_rate, RENDER_THREADS) if work.shape[0] > round(0.4 * sample_rate) else None
    loudness = model.loudness(1.0) if model else float("-inf")
    if not np.isfinite(loudness) or loudness < SILENCE_LUFS:
        report = MasterReport(loudness, true_peak_dbtp(work), 0.0, 0.0)
        return {n: a.astype(np.float32) for n, a in parts.items()}, work.astype(np.float32), report
    # The make-up gain is at least what reaches the target unlimited; only where the envelope can
    # come within 6 dB of the ceiling under that gain does the interpolation need computing.
    # Stems are limited too: one shared envelope (the mix's and every stem's, whichever is higher)
    # keeps each stem under the ceiling, since a stem can peak higher than the mix where parts cancel.
    floor = ceiling / db_to_gain(target_lufs - loudness) / 2.0
    envelope, upper = _joint_envelope(work, parts, floor)
    aim = target_lufs
    limiter = _Limiter(envelope, sample_rate)
    for _ in range(MASTER_PASSES):
        gain_db, limit = _gain_curve(model, limiter, aim, ceiling)
        curve = db_to_gain(gain_db) * limit
        out = work * curve[:, None]
        # BS.1770 on the result itself; under a constant gain (the limiter idle) the model is exact
        loudness = model.loudness(db_to_gain(gain_db)) if float(limit.min()) >= 1.0 \
            else _LoudnessModel(out, sample_rate, RENDER_THREADS).loudness(1.0)
        if abs(loudness - target_lufs) <= 0.1:
            break
        aim += target_lufs - loudness
    curve32 = curve.astype(np.float32)[:, None]
    with ThreadPoolExecutor(max_workers=RENDER_THREADS) as pool:
        out_parts = dict(zip(parts, pool.map(lambda audio: np.asarray(audio, dtype=np.float32) * curve32,
                                             parts.values()), strict=True))
    # Checked again after the gain: exact wherever it can reach the ceiling, so anything over it is
    # found; the mix's envelope is exact down to its own sample peak too, so its maximum is the mix's
    # true peak (true_peak_dbtp). Which blocks can is predicted from the bound measured before the gain
    # (times the curve's largest value around the block): the limiter's curve moves over milliseconds,
    # the interpolation filter spans 12 samples, so the interpolated peaks of the gained signal stay
    # within a fraction of a dB of the gained peaks; blocks predicted PREDICTION_SLACK_DB under a
    # floor are left as their samples.
    sample_peak = max(float(out.max()), -float(out.min()))
    curve_peak = _block_max(curve.astype(np.float32))
    curve_peak = np.maximum(curve_peak, np.maximum(np.roll(curve_peak, 1), np.roll(curve_peak, -1)))
    predicted = upper * curve_peak * np.float32(db_to_gain(PREDICTION_SLACK_DB))
    floors = [min(ceiling, sample_peak)] + [ceiling] * len(out_parts)
    checked = _envelopes([out, *out_parts.values()], floors, [predicted > floor for floor in floors])
    mix_envelope, *others = (envelope for envelope, _ in checked)
    peak_envelope = mix_envelope.copy()
    for other in others:
        np.maximum(peak_envelope, other, out=peak_envelope)
    if float(peak_envelope.max()) > db_to_gain(ceiling_dbtp):  # interpolation slack beyond the margin
        extra = limiter_gain(peak_envelope, sample_rate, ceiling)
        out = out * extra[:, None]
        extra32 = extra.astype(np.float32)[:, None]
        out_parts = {name: audio * extra32 for name, audio in out_parts.items()}
        limit = limit * extra
        loudness = integrated_loudness(out, sample_rate)
        peak_dbtp = true_peak_dbtp(out)
    else:
        top = float(mix_envelope.max())
        peak_dbtp = 20.0 * np.log10(top) if top > 0 else float("-inf")
    report = MasterReport(loudness_lufs=loudness, true_peak_dbtp=peak_dbtp, gain_db=gain_db,
                          limited_db=20.0 * np.log10(max(float(limit.min()), 1e-12)))
    return out_parts, out.astype(np.float32), report
