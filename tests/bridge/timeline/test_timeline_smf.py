"""Standard MIDI Files with a tempo map, read back by mido and pretty_midi (independent readers)."""
from __future__ import annotations

import io
from pathlib import Path

import mido
import pretty_midi
import pytest

from bridge.timeline.clip import read_clip
from bridge.timeline.place import place
from bridge.timeline.smf import clip_smf, tempo_map_from_smf
from bridge.timeline.tempo_map import MeterChange, TempoChange, TempoMap

TPQ = 96


def _project_with_tempo_change(path: Path) -> bytes:
    """A project SMF built with mido alone: 120 BPM, 90 BPM from beat 16 (bar 5 in 4/4), a piano part."""
    smf = mido.MidiFile(type=1, ticks_per_beat=TPQ)
    smf.tracks.append(mido.MidiTrack([
        mido.MetaMessage("track_name", name="song", time=0),
        mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90), time=16 * TPQ),
    ]))
    smf.tracks.append(mido.MidiTrack([
        mido.MetaMessage("track_name", name="piano", time=0),
        mido.Message("program_change", channel=0, program=0, time=0),
        mido.Message("note_on", channel=0, note=60, velocity=80, time=0),
        mido.Message("note_off", channel=0, note=60, velocity=0, time=TPQ),
    ]))
    smf.save(path)
    return path.read_bytes()


def test_place_into_existing_smf_lands_on_the_bar_under_a_tempo_change(tmp_path: Path, clip_folder) -> None:
    clip = clip_folder(tempo_bpm=90.0, start_bar=6)
    project = tmp_path / "song.mid"
    original = _project_with_tempo_change(project)

    placement = place(clip, project, 6)

    # bar 6 = beat 20 = 16 beats at 120 (8 s) + 4 beats at 90 (2.666... s)
    expected = 8.0 + 4 * 60 / 90
    assert placement.seconds == pytest.approx(expected)
    assert placement.project == tmp_path / "song-cadenza.mid"
    assert project.read_bytes() == original, "the user's file must not change"

    midi = pretty_midi.PrettyMIDI(str(placement.project))
    by_name = {instrument.name: instrument for instrument in midi.instruments}
    assert set(by_name) == {"piano", "bass", "drums"}
    assert by_name["piano"].notes[0].start == pytest.approx(0.0)
    for name in ("bass", "drums"):
        assert by_name[name].notes[0].start == pytest.approx(expected, abs=1e-4), name
    assert by_name["bass"].program == 33 and not by_name["bass"].is_drum
    assert by_name["drums"].is_drum
    assert len(midi.get_tempo_changes()[0]) == 2

    smf = mido.MidiFile(placement.project)
    assert smf.type == 1 and smf.ticks_per_beat == TPQ
    bass = next(track for track in smf.tracks if track.name == "bass")
    channels = {m.channel for m in bass if not m.is_meta}
    assert channels and 0 not in channels, "the clip's bass must move off the piano's channel"
    # mido's own playback clock: the bass's first note after the conductor's tempo change.
    solo = mido.MidiFile(type=1, ticks_per_beat=smf.ticks_per_beat)
    solo.tracks = [smf.tracks[0], bass]
    now, first = 0.0, None
    for message in solo:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            first = now
            break
    assert first == pytest.approx(expected, abs=1e-4)


def test_new_smf_has_the_clip_tempo_meter_names_and_programs(tmp_path: Path, clip_folder) -> None:
    clip = clip_folder(tempo_bpm=100.0, meter=(3, 4), start_bar=1)
    placement = place(clip, tmp_path / "new.mid", 5)
    # no project: the clip's tempo map; bar 5 in 3/4 = 12 beats at 100 BPM = 7.2 s
    midi = pretty_midi.PrettyMIDI(str(placement.project))
    assert placement.project == tmp_path / "new.mid"
    assert [(i.name, i.program, i.is_drum) for i in midi.instruments] == [("bass", 33, False), ("drums", 0, True)]
    assert min(i.notes[0].start for i in midi.instruments) == pytest.approx(7.2, abs=1e-4)
    signature = midi.time_signature_changes[0]
    assert (signature.numerator, signature.denominator) == (3, 4)
    assert midi.get_tempo_changes()[1][0] == pytest.approx(100.0, abs=1e-3)


def test_tempo_map_read_back_from_written_smf(clip_folder) -> None:
    tempo = TempoMap((TempoChange(0.0, 120.0), TempoChange(6.0, 90.0)), (MeterChange(1, 4, 4), MeterChange(2, 3, 4)))
    data = clip_smf(tempo, read_clip(clip_folder()).parts, 4)
    back = tempo_map_from_smf(data)
    assert [t.beat for t in back.tempos] == [0.0, 6.0]
    assert [round(t.bpm, 3) for t in back.tempos] == [120.0, 90.0]
    assert back.meters == tempo.meters
    # bar 4 = beat 4 + 2 * 3 = 10: 6 beats at 120 (3 s) + 4 at 90 (2.666 s)
    midi = pretty_midi.PrettyMIDI(io.BytesIO(data))
    assert min(i.notes[0].start for i in midi.instruments) == pytest.approx(3 + 4 * 60 / 90, abs=1e-4)


def test_placing_twice_never_overwrites(tmp_path: Path, clip_folder) -> None:
    clip = clip_folder()
    project = tmp_path / "song.mid"
    _project_with_tempo_change(project)
    first = place(clip, project, 2).project
    second = place(clip, project, 3).project
    assert (first.name, second.name) == ("song-cadenza.mid", "song-cadenza-2.mid")
    assert first.read_bytes() != second.read_bytes()
