"""REAPER projects (.RPP): tempo map, one track per stem, items at the bar's position in seconds.

REAPER keeps positions in seconds: ``TEMPO bpm num den`` sets the start, tempo and meter changes
are points of ``<TEMPOENVEX`` (``PT seconds bpm shape timesig``, shape 1 = hold the tempo until the
next point, timesig = numerator + denominator * 65536), and an ``<ITEM`` has ``POSITION`` and
``LENGTH`` in seconds with a ``<SOURCE WAVE`` naming its file. Parsed and written with the `rpp`
package; placing into an existing project keeps its elements and appends tracks.
"""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import rpp
from rpp import Element

from bridge.timeline.clip import MidiPart
from bridge.timeline.errors import TimelineError
from bridge.timeline.tempo_map import MeterChange, TempoChange, TempoMap, TempoMapError

SHAPE_SQUARE = "1"
TIMESIG_DENOMINATOR_SHIFT = 65536


class ReaperError(TimelineError, ValueError):
    """An .RPP file that cannot be read as a REAPER project."""


@dataclass(frozen=True)
class ReaperItem:
    """One audio item to add: its track name, file (as written into the project) and place in seconds."""

    track: str
    file: str
    position: float
    length: float


def _guid() -> str:
    return "{" + str(uuid.uuid4()).upper() + "}"


def _fmt(value: float) -> str:
    return f"{value:.12f}".rstrip("0").rstrip(".") or "0"


def tempo_envelope(tempo_map: TempoMap) -> Element:
    """A ``<TEMPOENVEX`` with a held point at every tempo or meter change."""
    points: dict[float, tuple[float, MeterChange | None]] = {}
    for seconds, bpm in tempo_map.tempos_in_seconds():
        points[round(seconds, 12)] = (bpm, None)
    for beat, meter in tempo_map.meters_in_beats():
        seconds = round(tempo_map.beat_to_seconds(beat), 12)
        points[seconds] = (tempo_map.tempo_at(beat), meter)
    children: list = [["ACT", "1", "-1"], ["VIS", "1", "0", "1"], ["LANEHEIGHT", "0", "0"], ["ARM", "0"],
                      ["DEFSHAPE", "1", "-1", "-1"]]
    for seconds in sorted(points):
        bpm, meter = points[seconds]
        row = ["PT", _fmt(seconds), _fmt(bpm), SHAPE_SQUARE]
        if meter is not None:
            row.append(str(meter.numerator + meter.denominator * TIMESIG_DENOMINATOR_SHIFT))
        children.append(row)
    return Element("TEMPOENVEX", [], children)


def new_project(tempo_map: TempoMap, sample_rate: int) -> Element:
    """An empty project with ``tempo_map`` and ``sample_rate``."""
    first, meter = tempo_map.tempos[0], tempo_map.meters[0]
    return Element("REAPER_PROJECT", ["0.1", "6.0/cadenza", "0"], [
        ["RIPPLE", "0"],
        ["TEMPO", _fmt(first.bpm), str(meter.numerator), str(meter.denominator)],
        ["SAMPLERATE", str(sample_rate), "0", "0"],
        tempo_envelope(tempo_map),
    ])


def _row(project: Element, tag: str) -> list | None:
    return next((child for child in project if isinstance(child, list) and child and child[0] == tag), None)


def tempo_map_from_project(project: Element) -> TempoMap | None:
    """The project's tempo map: ``TEMPO`` and the held points of ``<TEMPOENVEX`` (ramps are refused)."""
    tempo = _row(project, "TEMPO")
    if tempo is None:
        return None
    bpm = float(tempo[1])
    numerator = int(tempo[2]) if len(tempo) > 2 else 4
    denominator = int(tempo[3]) if len(tempo) > 3 else 4
    points = []
    envelope = project.find("TEMPOENVEX")
    if envelope is not None:
        points = [row for row in envelope if isinstance(row, list) and row and row[0] == "PT"]
    rows = sorted(((float(r[1]), float(r[2]), r[3] if len(r) > 3 else SHAPE_SQUARE,
                   int(r[4]) if len(r) > 4 else 0) for r in points), key=lambda row: row[0])
    tempos = [TempoChange(0.0, bpm)]
    meters = [MeterChange(1, numerator, denominator)]
    seconds_at, beat_at = 0.0, 0.0
    meter_beat = 0.0
    for index, (seconds, point_bpm, shape, timesig) in enumerate(rows):
        following = rows[index + 1][1] if index + 1 < len(rows) else point_bpm
        if shape != SHAPE_SQUARE and abs(following - point_bpm) > 1e-9:
            raise TempoMapError(f"the project's tempo envelope ramps from {seconds:g} s (shape {shape}); only "
                                "held tempo points (square shape) can be placed against")
        # Seconds are written with 12 decimals; snap the beat to a micro-beat so grid positions stay exact.
        beat = round(beat_at + (seconds - seconds_at) * tempos[-1].bpm / 60.0, 6)
        if seconds <= 0:
            tempos[0] = TempoChange(0.0, point_bpm)
        elif abs(point_bpm - tempos[-1].bpm) > 1e-9:
            tempos.append(TempoChange(beat, point_bpm))
        if timesig > 0:
            num, den = timesig % TIMESIG_DENOMINATOR_SHIFT, timesig // TIMESIG_DENOMINATOR_SHIFT
            bars = (beat - meter_beat) / meters[-1].quarters_per_bar
            if abs(bars - round(bars)) > 1e-6:
                raise TempoMapError(f"the project changes meter at {seconds:g} s, which is not on a bar line")
            if seconds <= 0:
                meters[0] = MeterChange(1, num, den)
            else:
                meters.append(MeterChange(meters[-1].bar + round(bars), num, den))
                meter_beat = beat
        seconds_at, beat_at = seconds, beat
    return TempoMap(tuple(tempos), tuple(meters))


def add_items(project: Element, items: Sequence[ReaperItem]) -> None:
    """Append one track per distinct track name, holding its items."""
    tracks: dict[str, Element] = {}
    for item in items:
        if item.track not in tracks:
            tracks[item.track] = Element("TRACK", [_guid()], [["NAME", item.track], ["NCHAN", "2"],
                                                              ["TRACKID", _guid()]])
            project.append(tracks[item.track])
        tracks[item.track].append(Element("ITEM", [], [
            ["POSITION", _fmt(item.position)],
            ["SNAPOFFS", "0"],
            ["LENGTH", _fmt(item.length)],
            ["LOOP", "0"],
            ["NAME", Path(item.file).name],
            ["IGUID", _guid()],
            ["SOFFS", "0"],
            Element("SOURCE", ["WAVE"], [["FILE", item.file]]),
        ]))


REAPER_TICKS_PER_QUARTER = 960


def add_midi_items(project: Element, parts: Sequence[MidiPart], position: float, length: float,
                   beats: float) -> None:
    """One track per MIDI part with an in-project MIDI item at ``position`` seconds.

    REAPER stores the events inside the item (``<SOURCE MIDI``, ``HASDATA 1 960 QN``, then
    ``E delta status data1 data2`` rows in hex): they are in quarter notes, so they follow the
    project's tempo map like any MIDI item; the item spans ``beats`` quarters (``length`` seconds).
    """
    for part in parts:
        rows: list = [["HASDATA", "1", str(REAPER_TICKS_PER_QUARTER), "QN"]]
        now = 0
        for beat, message in sorted(part.events, key=lambda event: event[0]):
            if message.is_meta:
                continue
            tick = round(beat * REAPER_TICKS_PER_QUARTER)
            rows.append(["E", str(tick - now), *(f"{byte:02x}" for byte in message.bytes())])
            now = tick
        end = round(beats * REAPER_TICKS_PER_QUARTER)
        channel = next((m.channel for _, m in part.events if not m.is_meta and hasattr(m, "channel")), 0)
        rows.append(["E", str(max(end - now, 0)), f"b{channel:x}", "7b", "00"])  # all notes off at the end
        project.append(Element("TRACK", [_guid()], [["NAME", part.name], ["TRACKID", _guid()], Element("ITEM", [], [
            ["POSITION", _fmt(position)],
            ["SNAPOFFS", "0"],
            ["LENGTH", _fmt(length)],
            ["LOOP", "0"],
            ["NAME", part.name],
            ["IGUID", _guid()],
            ["SOFFS", "0"],
            Element("SOURCE", ["MIDI"], rows),
        ])]))


def load(data: str) -> Element:
    """Parse .RPP text; ReaperError if it is not a REAPER project."""
    try:
        project = rpp.loads(data)
    except Exception as error:  # the rpp package raises its own parse errors
        raise ReaperError(f"not a readable REAPER project: {error}") from None
    if not isinstance(project, Element) or project.tag != "REAPER_PROJECT":
        raise ReaperError("not a REAPER project (it does not start with <REAPER_PROJECT)")
    return project


def dump(project: Element) -> str:
    return rpp.dumps(project)
