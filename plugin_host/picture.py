"""A picture of a clip: a piano roll per part above the mix's waveform, drawn with Pillow.

Written as DIR/clip.png so a producer sees at a glance what is in the folder: which parts play
where, on a time axis with bar lines, and how the mix's level moves. Drawn straight into pixels
(no plotting library): the engine draws it while the stems travel to the client, on the path of
every CLI call, so it must cost milliseconds, not the tenths of a second a figure library takes.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from symusic import Score

from plugin_host.inprocess import bar_ticks, clip_seconds, tick_to_second

PART_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
WIDTH = 1200  # pixels
ROW_HEIGHT = 130  # one part's piano roll, and the waveform's row
ROW_GAP = 30
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 110, 12, 34, 48
BAR_LINE, FRAME, TEXT, WAVE = (170, 170, 170), (60, 60, 60), (20, 20, 20), (51, 51, 51)
NOTE_HEIGHT = 0.8  # of a semitone's row


@dataclass(frozen=True)
class _Row:
    """A row's box in pixels and the values it spans (seconds across, ``low``..``high`` up)."""

    top: int
    left: int
    right: int
    seconds: float
    low: float
    high: float

    @property
    def bottom(self) -> int:
        return self.top + ROW_HEIGHT

    def x(self, second: float) -> float:
        return self.left + (self.right - self.left) * second / self.seconds

    def y(self, value: float) -> float:
        return self.bottom - ROW_HEIGHT * (value - self.low) / (self.high - self.low)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at ``size`` (a scalable one where Pillow has FreeType; a bitmap one otherwise)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1: the bitmap font only
        return ImageFont.load_default()


def _step(span: float, most: int) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving at most ``most`` ticks over ``span``."""
    raw = span / max(1, most)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def clip_png(score: Score, mix: np.ndarray, sample_rate: int, title: str = "", bars: int | None = None) -> bytes:
    """PNG bytes: one piano-roll row per track, then the mix waveform, all on one seconds axis."""
    tracks = list(score.tracks)
    seconds = max(clip_seconds(score, bars), mix.shape[0] / sample_rate if mix.size else 0.0) or 1.0
    rows = len(tracks) + 1
    height = MARGIN_TOP + rows * ROW_HEIGHT + (rows - 1) * ROW_GAP + MARGIN_BOTTOM
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image, "RGBA")  # RGBA fills blend: a note's opacity is its velocity
    small, label_font = _font(11), _font(12)
    per_bar = bar_ticks(score)
    bar_lines = [tick_to_second(score, t) for t in range(0, score.end() + per_bar, per_bar)]

    def row_at(index: int, low: float, high: float) -> _Row:
        return _Row(MARGIN_TOP + index * (ROW_HEIGHT + ROW_GAP), MARGIN_LEFT, WIDTH - MARGIN_RIGHT, seconds, low, high)

    def frame(row: _Row, ticks: list[float], label: str) -> None:
        for second in bar_lines:
            if 0 <= second <= seconds:
                x = round(row.x(second))
                draw.line([(x, row.top), (x, row.bottom)], fill=BAR_LINE)
        draw.rectangle([row.left, row.top, row.right, row.bottom], outline=FRAME)
        for value in ticks:
            y = round(row.y(value))
            draw.line([(row.left - 4, y), (row.left, y)], fill=FRAME)
            draw.text((row.left - 6, y), f"{value:g}", fill=TEXT, font=small, anchor="rm")
        draw.multiline_text((6, row.top + ROW_HEIGHT / 2), label, fill=TEXT, font=label_font, anchor="lm",
                            spacing=2)

    for index, track in enumerate(tracks):
        pitches = [note.pitch for note in track.notes]
        low, high = (min(pitches) - 2, max(pitches) + 2) if pitches else (58, 62)
        row = row_at(index, low, high)
        red, green, blue = _rgb(PART_COLOURS[index % len(PART_COLOURS)])
        for note in track.notes:
            start = tick_to_second(score, note.time)
            end = tick_to_second(score, note.time + note.duration)
            left, right = row.x(min(start, seconds)), row.x(min(end, seconds))
            top, bottom = row.y(note.pitch + NOTE_HEIGHT / 2), row.y(note.pitch - NOTE_HEIGHT / 2)
            alpha = round(255 * (0.35 + 0.65 * note.velocity / 127))
            draw.rectangle([left, top, max(left + 1, right), bottom], fill=(red, green, blue, alpha))
        step = _step(high - low, 4)
        ticks = [value for value in np.arange(math.ceil(low / step) * step, high + 1e-9, step) if low <= value <= high]
        name = (track.name or f"track {index + 1}")[:14]
        frame(row, ticks, f"{name}\n{'drums' if track.is_drum else f'prog {track.program}'}")

    wave = row_at(len(tracks), -1.0, 1.0)
    if mix.size:
        mono = (mix[:, 0] + mix[:, 1]) * np.float32(0.5) if mix.ndim == 2 and mix.shape[1] == 2 else \
            (mix.mean(axis=1) if mix.ndim == 2 else mix)
        columns = wave.right - wave.left
        edges = np.minimum((np.arange(columns + 1) * (seconds * sample_rate / columns)).astype(np.int64), len(mono))
        filled = np.flatnonzero(edges[1:] > edges[:-1])  # columns holding samples (the clip may end early)
        if filled.size:  # each column's extremes in one pass (reduceat from each column's first sample)
            highs = np.maximum.reduceat(mono, edges[filled])
            lows = np.minimum.reduceat(mono, edges[filled])
            for column, high, low in zip(filled.tolist(), highs.tolist(), lows.tolist(), strict=True):
                x = wave.left + column
                draw.line([(x, wave.y(high)), (x, wave.y(low))], fill=WAVE)
    frame(wave, [-1.0, -0.5, 0.0, 0.5, 1.0], "mix")
    step = _step(seconds, 12)
    for second in np.arange(0.0, seconds + 1e-9, step):
        x = round(wave.x(second))
        draw.line([(x, wave.bottom), (x, wave.bottom + 4)], fill=FRAME)
        draw.text((x, wave.bottom + 6), f"{second:g}", fill=TEXT, font=small, anchor="mt")
    draw.text(((wave.left + wave.right) / 2, height - 6), "seconds from the clip's first downbeat", fill=TEXT,
              font=label_font, anchor="md")
    if title:
        draw.text((WIDTH / 2, MARGIN_TOP / 2), title, fill=TEXT, font=_font(13), anchor="mm")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def stems_png(score: Score, stems, title: str, bars: int | None = None) -> bytes:
    """clip.png of a render (``stems``: its mix, rate, loudness and true peak), titled ``title`` and the mix's
    loudness and true peak."""
    return clip_png(score, stems.mix, stems.sample_rate, f"{title[:200]}: mix {stems.loudness_lufs or 0.0:.1f} LUFS, "
                    f"{stems.true_peak_dbtp or 0.0:.1f} dBTP", bars)
