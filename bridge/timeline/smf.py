"""Standard MIDI File (type 1) with the project's tempo map and the clip at its bar.

The first track carries the tempo map (every tempo and meter change) with the first part's
notes, as symusic and most DAWs write it; each part is a named track with its program. Placing
into an existing .mid keeps every track of it untouched and appends the clip's tracks, moving
the clip's melodic channels off channels the project already uses (drums stay on channel 10).
"""
from __future__ import annotations

import io
from collections.abc import Sequence

import mido

from bridge.timeline.clip import MidiPart
from bridge.timeline.tempo_map import MeterChange, TempoChange, TempoMap, TempoMapError

TICKS_PER_QUARTER = 480
DRUM_CHANNEL = 9


def _tempo_events(tempo_map: TempoMap, tpq: int) -> list[tuple[int, mido.MetaMessage]]:
    events = [(round(change.beat * tpq), mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(change.bpm)))
              for change in tempo_map.tempos]
    for beat, meter in tempo_map.meters_in_beats():
        events.append((round(beat * tpq), mido.MetaMessage("time_signature", numerator=meter.numerator,
                                                           denominator=meter.denominator)))
    return events


def _track(name: str, events: Sequence[tuple[int, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
    """A track from absolute-tick events (stable order: as given at equal ticks), name first."""
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    now = 0
    for tick, message in sorted(events, key=lambda event: event[0]):
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def _part_events(part: MidiPart, offset_beats: float, tpq: int,
                 channels: dict[int, int]) -> list[tuple[int, mido.Message | mido.MetaMessage]]:
    events = []
    for beat, message in part.events:
        if not message.is_meta and hasattr(message, "channel"):
            message = message.copy(channel=channels.get(message.channel, message.channel))
        events.append((round((beat + offset_beats) * tpq), message))
    if events and min(tick for tick, _ in events) < 0:
        raise TempoMapError(f"part {part.name!r} has events before the clip's first downbeat")
    return events


def clip_smf(tempo_map: TempoMap, parts: Sequence[MidiPart], at_bar: int, tpq: int = TICKS_PER_QUARTER,
             key: str | None = None) -> bytes:
    """A new type 1 SMF: ``tempo_map`` (and ``key``, a mido key name such as "Am") in the first track,
    ``parts`` starting at the downbeat of ``at_bar``."""
    offset = tempo_map.bar_to_beat(at_bar)
    smf = mido.MidiFile(type=1, ticks_per_beat=tpq)
    conductor = _tempo_events(tempo_map, tpq)
    if key is not None:
        conductor.append((0, mido.MetaMessage("key_signature", key=key)))
    if not parts:
        smf.tracks.append(_track("tempo", conductor))
    for index, part in enumerate(parts):
        events = _part_events(part, offset, tpq, {})
        smf.tracks.append(_track(part.name, (conductor if index == 0 else []) + events))
    out = io.BytesIO()
    smf.save(file=out)
    return out.getvalue()


def key_of_smf(data: bytes) -> str | None:
    """The first key signature an SMF declares (mido's name, e.g. "Am"), or None."""
    smf = mido.MidiFile(file=io.BytesIO(data))
    return next((m.key for track in smf.tracks for m in track if m.type == "key_signature"), None)


def tempo_map_from_smf(data: bytes) -> TempoMap | None:
    """The tempo map an SMF declares (tempo and meter events of every track); None if it sets no tempo."""
    smf = mido.MidiFile(file=io.BytesIO(data))
    tpq = smf.ticks_per_beat
    tempos: dict[int, float] = {}
    meters: dict[int, tuple[int, int]] = {}
    for track in smf.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                tempos[tick] = mido.tempo2bpm(message.tempo)
            elif message.type == "time_signature":
                meters[tick] = (message.numerator, message.denominator)
    if not tempos:
        return None
    tempos.setdefault(0, 120.0)  # SMF's default before the first tempo event
    meters.setdefault(0, (4, 4))
    meter_changes: list[MeterChange] = []
    beat_at, bar_at, qpb = 0.0, 1, 4.0
    for tick in sorted(meters):
        beat = tick / tpq
        bars = (beat - beat_at) / qpb if meter_changes else 0.0
        if abs(bars - round(bars)) > 1e-6:
            raise TempoMapError(f"the SMF changes meter at beat {beat:g}, which is not on a bar line")
        bar_at += round(bars)
        numerator, denominator = meters[tick]
        meter_changes.append(MeterChange(bar_at, numerator, denominator))
        beat_at, qpb = beat, meter_changes[-1].quarters_per_bar
    return TempoMap(tuple(TempoChange(tick / tpq, bpm) for tick, bpm in sorted(tempos.items())),
                    tuple(meter_changes))


def _channel_moves(smf: mido.MidiFile, parts: Sequence[MidiPart]) -> dict[int, int]:
    """Clip channel -> a channel the project does not use (drums keep channel 10)."""
    used = {m.channel for track in smf.tracks for m in track if not m.is_meta and hasattr(m, "channel")}
    wanted = sorted({m.channel for part in parts for _, m in part.events if not m.is_meta and hasattr(m, "channel")})
    free = [c for c in range(16) if c != DRUM_CHANNEL and c not in used and c not in wanted]
    moves = {}
    for channel in wanted:
        if channel != DRUM_CHANNEL and channel in used and free:
            moves[channel] = free.pop(0)
    return moves


def place_into_smf(project: bytes, parts: Sequence[MidiPart], at_bar: int,
                   tempo_map: TempoMap | None = None) -> bytes:
    """``project`` with ``parts`` appended as tracks at ``at_bar`` of its tempo map (or ``tempo_map`` if it
    has none, which is then written into its first track)."""
    smf = mido.MidiFile(file=io.BytesIO(project))
    own = tempo_map_from_smf(project)
    if own is None and tempo_map is None:
        raise TempoMapError("the MIDI file sets no tempo and no tempo map was given")
    used_map = own or tempo_map
    tpq = smf.ticks_per_beat
    if smf.type == 0:
        smf.type = 1  # a type 0 file becomes type 1 so the clip's parts can be tracks of their own
    if own is None:
        first = smf.tracks[0] if smf.tracks else mido.MidiTrack()
        smf.tracks[:1] = [_merge(first, _tempo_events(used_map, tpq))]
    moves = _channel_moves(smf, parts)
    offset = used_map.bar_to_beat(at_bar)
    for part in parts:
        smf.tracks.append(_track(part.name, _part_events(part, offset, tpq, moves)))
    out = io.BytesIO()
    smf.save(file=out)
    return out.getvalue()


def _merge(track: mido.MidiTrack, extra: list[tuple[int, mido.MetaMessage]]) -> mido.MidiTrack:
    """``track`` with absolute-tick ``extra`` events merged in (extra first at equal ticks)."""
    events, tick, name = [], 0, None
    for message in track:
        tick += message.time
        if message.is_meta and message.type == "track_name" and name is None:
            name = message.name
        elif not (message.is_meta and message.type == "end_of_track"):
            events.append((tick, message))
    return _track(name or "tempo", extra + events)
