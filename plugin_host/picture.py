"""A picture of a clip: a piano roll per part above the mix's waveform (matplotlib, Agg, no display).

Written as DIR/clip.png so a producer sees at a glance what is in the folder: which parts play
where, on a time axis with bar lines, and how the mix's level moves.
"""
from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from symusic import Score

from plugin_host.render import bar_ticks, clip_seconds, tick_to_second

WAVEFORM_POINTS = 2000
PART_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def clip_png(score: Score, mix: np.ndarray, sample_rate: int, title: str = "", bars: int | None = None) -> bytes:
    """PNG bytes: one piano-roll row per track, then the mix waveform, all on one seconds axis."""
    tracks = list(score.tracks)
    length = max(clip_seconds(score, bars), mix.shape[0] / sample_rate if mix.size else 0.0)
    rows = len(tracks) + 1
    width, height = 12.0, 1.6 * rows + 0.6
    figure = Figure(figsize=(width, height), dpi=100)
    # Fixed margins in inches (a constrained layout measured every tick label: half the drawing time).
    figure.subplots_adjust(left=0.8 / width, right=1 - 0.1 / width, bottom=0.5 / height, top=1 - 0.35 / height,
                           hspace=0.25)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    per_bar = bar_ticks(score)
    bar_lines = [tick_to_second(score, t) for t in range(0, score.end() + per_bar, per_bar)]
    for index, (axis, track) in enumerate(zip(axes, tracks, strict=False)):
        colour = PART_COLOURS[index % len(PART_COLOURS)]
        starts = [tick_to_second(score, n.time) for n in track.notes]
        widths = [tick_to_second(score, n.time + n.duration) - s for n, s in zip(track.notes, starts, strict=True)]
        pitches = [n.pitch for n in track.notes]
        # One collection per part (not one artist per note, which made drawing take seconds): each note a
        # rectangle, its opacity its velocity.
        red, green, blue = to_rgb(colour)
        axis.add_collection(PolyCollection(
            [((start, pitch - 0.4), (start + width, pitch - 0.4), (start + width, pitch + 0.4), (start, pitch + 0.4))
             for start, width, pitch in zip(starts, widths, pitches, strict=True)],
            facecolors=[(red, green, blue, 0.35 + 0.65 * n.velocity / 127) for n in track.notes], linewidths=0))
        if pitches:
            axis.set_ylim(min(pitches) - 2, max(pitches) + 2)
        label = track.name or f"track {index + 1}"
        axis.set_ylabel(f"{label}\n{'drums' if track.is_drum else f'prog {track.program}'}", fontsize=8)
        for line in bar_lines:
            axis.axvline(line, color="#999999", linewidth=0.5)
    wave = axes[-1]
    if mix.size:
        mono = mix.mean(axis=1) if mix.ndim == 2 else mix
        step = max(1, len(mono) // WAVEFORM_POINTS)
        blocks = mono[:len(mono) // step * step].reshape(-1, step)
        times = np.arange(len(blocks)) * step / sample_rate
        wave.fill_between(times, blocks.min(axis=1), blocks.max(axis=1), color="#333333", linewidth=0)
    wave.set_ylim(-1, 1)
    wave.set_ylabel("mix", fontsize=8)
    wave.set_xlabel("seconds from the clip's first downbeat")
    wave.set_xlim(0, length)
    for line in bar_lines:
        wave.axvline(line, color="#999999", linewidth=0.5)
    if title:
        figure.suptitle(title, fontsize=10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
