"""Genre processing a prompt or a style asks for (plugin_host/data/sounds.toml, [treatment.*]).

- lofi: tape wow (slow) and flutter (fast) as a modulated delay, the same on every stem so they stay
  together; a low-pass; vinyl noise (hiss and crackle) on one stem, so the stems still add up to the mix.
- pumping: every stem but the drums ducks on each beat and recovers, as under a kick-keyed sidechain.
- hall: a large hall reverb (pedalboard's) on every stem, the drums included.
All of it is deterministic: the noise comes from a fixed seed.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt

from plugin_host.sounds import Treatment

NOISE_SEED = 1770


def tape(audio: np.ndarray, sample_rate: int, treatment: Treatment) -> np.ndarray:
    """Wow and flutter (a delay whose time swings), then the low-pass."""
    frames = audio.shape[0]
    t = np.arange(frames) / sample_rate
    wow = treatment.get("wow_ms") / 1000 * (1 + np.sin(2 * np.pi * treatment.get("wow_hz") * t))
    flutter = treatment.get("flutter_ms") / 1000 * (1 + np.sin(2 * np.pi * treatment.get("flutter_hz") * t + 1.3))
    position = np.arange(frames) - (wow + flutter) * sample_rate  # read position, always behind the write
    position = np.clip(position, 0, frames - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, frames - 1)
    frac = (position - low)[:, None].astype(np.float32)
    warped = audio[low] * (1 - frac) + audio[high] * frac
    sos = butter(2, treatment.get("lowpass_hz"), "lowpass", fs=sample_rate, output="sos")
    return sosfilt(sos, warped, axis=0).astype(np.float32)


def vinyl_noise(frames: int, sample_rate: int, treatment: Treatment) -> np.ndarray:
    """Stereo hiss (band-limited) and crackle (sparse clicks) at ``noise_dbfs`` RMS."""
    rng = np.random.default_rng(NOISE_SEED)
    hiss = rng.standard_normal((frames, 2)).astype(np.float32)
    hiss = sosfilt(butter(2, [300, 6000], "bandpass", fs=sample_rate, output="sos"), hiss, axis=0)
    hiss *= 10 ** (treatment.get("noise_dbfs") / 20) / max(float(np.sqrt(np.mean(hiss ** 2))), 1e-12)
    crackle = np.zeros((frames, 2), dtype=np.float64)
    count = int(frames / sample_rate * 6)  # about six clicks a second
    at = rng.integers(0, max(1, frames - 48), size=count)
    size = rng.exponential(1.0, size=count) * 10 ** ((treatment.get("noise_dbfs") + 18) / 20)
    shape = np.exp(-np.arange(48) / 6.0) * np.sign(rng.standard_normal(48))
    for where, level, side in zip(at, size, rng.integers(0, 2, size=count), strict=True):
        crackle[where:where + 48, side] += level * shape
        crackle[where:where + 48, 1 - side] += 0.6 * level * shape
    return (hiss + crackle).astype(np.float32)


def pump_gain(beats: list[int], frames: int, sample_rate: int, seconds_per_beat: float,
              treatment: Treatment) -> np.ndarray:
    """Per-sample gain: down by depth_db at each beat, back to 1 over release_beats (a smooth curve)."""
    depth = 1 - 10 ** (-treatment.get("depth_db") / 20)
    release = max(1, round(treatment.get("release_beats") * seconds_per_beat * sample_rate))
    attack = max(1, round(0.004 * sample_rate))
    shape = np.ones(release)
    rise = np.linspace(0, 1, release)
    shape = 1 - depth * (1 - rise ** 1.6)  # fast dip, smooth recovery
    gain = np.ones(frames)
    for beat in beats:
        start = max(0, beat - attack)
        ramp = np.linspace(1, shape[0], beat - start) if beat > start else np.zeros(0)
        gain[start:beat] = np.minimum(gain[start:beat], ramp)
        stop = min(frames, beat + release)
        gain[beat:stop] = np.minimum(gain[beat:stop], shape[:stop - beat])
    return gain.astype(np.float32)


def hall_chain(treatment: Treatment) -> list:
    import pedalboard

    return [pedalboard.Reverb(room_size=treatment.get("room_size"), damping=treatment.get("damping"),
                              wet_level=treatment.get("wet_level"), dry_level=treatment.get("dry_level"), width=1.0)]


def apply(parts: dict[str, np.ndarray], roles: dict[str, str], treatments: list[Treatment], beats: list[int],
          seconds_per_beat: float, sample_rate: int) -> dict[str, np.ndarray]:
    """Every treatment on the stems (all the same length); ``beats`` are the frames of the clip's beats
    (quarter notes) under its tempo map. Returns new buffers."""
    if not treatments or not parts:
        return parts
    out = dict(parts)
    frames = next(iter(parts.values())).shape[0]
    for treatment in treatments:
        if treatment.name == "lofi":
            out = {name: tape(audio, sample_rate, treatment) for name, audio in out.items()}
            carrier = next((n for n in out if roles.get(n) == "drums"), next(iter(out)))
            out[carrier] = out[carrier] + vinyl_noise(frames, sample_rate, treatment)
        elif treatment.name == "pumping":
            gain = pump_gain(beats, frames, sample_rate, seconds_per_beat, treatment)[:, None]
            out = {name: audio if roles.get(name) == "drums" else audio * gain for name, audio in out.items()}
        elif treatment.name == "hall":
            import pedalboard

            board = pedalboard.Pedalboard(hall_chain(treatment))
            out = {name: board(audio.T.copy(), sample_rate, reset=True).T.astype(np.float32)
                   for name, audio in out.items()}
    return out
