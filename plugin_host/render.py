"""Render: Score -> Stems. Every stem spans the clip exactly; sample 0 is its first downbeat."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from symusic import Score

from engine.errors import Cancelled
from plugin_host.soundfont import SoundFontInstrument
from plugin_host.stems import Stems

FADE_SECONDS = 0.01
PEAK_CEILING = 10 ** (-1.0 / 20)  # -1 dBFS


def clip_seconds(score: Score) -> float:
    """The clip's length: up to the end of the bar holding its last note (tempo map aware)."""
    ticks = score.end()
    bar_ticks = _bar_ticks(score)
    end_ticks = -(-max(ticks, 1) // bar_ticks) * bar_ticks
    return _tick_to_second(score, end_ticks)


def _bar_ticks(score: Score) -> int:
    if len(score.time_signatures) == 0:
        return score.tpq * 4
    ts = score.time_signatures[0]
    return score.tpq * 4 * ts.numerator // ts.denominator


def _tick_to_second(score: Score, tick: int) -> float:
    """Seconds at ``tick`` under the score's tempo map."""
    # Tempo as the file stores it (microseconds per quarter), exactly as a DAW reads it.
    tempos = sorted(((t.time, 6e7 / t.mspq) for t in score.tempos), key=lambda x: x[0]) or [(0, 120.0)]
    seconds, last_tick, qpm = 0.0, 0, tempos[0][1]
    for time, next_qpm in tempos:
        if time >= tick:
            break
        seconds += (time - last_tick) / score.tpq * 60.0 / qpm
        last_tick, qpm = time, next_qpm
    return seconds + (tick - last_tick) / score.tpq * 60.0 / qpm


def render(score: Score, sample_rate: int = 48000, soundfont: Path | None = None,
           progress: Callable[[float], None] | None = None,
           should_stop: Callable[[], bool] | None = None) -> Stems:
    """Render every track to a stem of the clip's exact length, then a peak-safe mix.

    ``should_stop`` is polled between tracks; when it returns true the work ends with Cancelled.
    """
    frames = round(clip_seconds(score) * sample_rate)
    instrument = SoundFontInstrument(soundfont, sample_rate)
    parts: dict[str, np.ndarray] = {}
    for index, track in enumerate(score.tracks):
        if should_stop and should_stop():
            raise Cancelled(f"render stopped after {index} of {len(score.tracks)} tracks")
        notes = [(_tick_to_second(score, n.time), _tick_to_second(score, n.time + n.duration), n.pitch, n.velocity)
                 for n in track.notes]
        audio = instrument.render(track, notes, frames, should_stop)
        _fade_out(audio, round(FADE_SECONDS * sample_rate))
        parts[_unique(track.name or f"track{index + 1}", parts)] = audio
        if progress:
            progress((index + 1) / max(1, len(score.tracks)))
    mix = np.sum(list(parts.values()), axis=0) if parts else np.zeros((frames, 2), np.float32)
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    if peak > PEAK_CEILING:
        gain = PEAK_CEILING / peak
        mix = mix * gain
        parts = {name: audio * gain for name, audio in parts.items()}
    return Stems(sample_rate=sample_rate, parts=parts, mix=mix.astype(np.float32))


def _fade_out(audio: np.ndarray, frames: int) -> None:
    frames = min(frames, audio.shape[0])
    if frames:
        audio[-frames:] *= np.linspace(1.0, 0.0, frames, dtype=np.float32)[:, None]


def _unique(name: str, taken: dict) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate
