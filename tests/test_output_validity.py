"""Issue 9, scenario 14: every file Cadenza writes reads back, with independent readers, as what was made.

Clips are generated and rendered by the real engine process and written as `cadenza generate`
writes them (bridge/clip_files.py). Then:
- every WAV (each stem and the mix, 24-bit Broadcast WAV) re-read by soundfile equals the audio
  the client received over gRPC, within 24-bit quantisation (one step, 2**-23);
- clip.mid re-read by mido and by symusic equals the Score decoded from the bytes written
  (every note's track, start, end, pitch, velocity; tempo and meter);
- the DAWproject `cadenza place` makes of the clip validates against the official XSDs
  (the same check as tests/bridge/timeline/test_timeline_dawproject.py), and the audio it holds
  re-reads as the stems.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile
from symusic import Score

from bridge.clip_content import render_options, spec_json
from bridge.clip_files import write_clip
from bridge.timeline.place import clip_at_bar, place
from engine.music.midi import smf_to_score
from protos.cadenza.v1 import engine_pb2 as pb
from tests.bridge.timeline.test_timeline_dawproject import _validate

STEP_24_BIT = 2.0 ** -23
CASES = [
    ("4 bars of upbeat pop in A major", pb.Overrides(seed=1)),
    ("slow minor ballad, 3/4, 4 bars", pb.Overrides(seed=2)),
    ("funky drums and bass, 2 bars", pb.Overrides(seed=3, start_bar=3)),
]


def _notes_symusic(score: Score) -> list[tuple]:
    """(track, start, end, pitch, velocity) in ticks at the score's own resolution, sorted."""
    return sorted((i, n.time, n.time + n.duration, n.pitch, n.velocity)
                  for i, track in enumerate(score.tracks) for n in track.notes)


def _notes_mido(path: Path) -> tuple[list[tuple], list[int], list[tuple[int, int]]]:
    """The same notes, tempos (microseconds per beat) and meters, read by mido from the file."""
    midi = mido.MidiFile(path)
    notes, tempos, meters = [], [], []
    index = -1
    for track in midi.tracks:
        now, held, has_notes = 0, {}, any(m.type == "note_on" for m in track)
        index += has_notes
        for message in track:
            now += message.time
            if message.type == "set_tempo":
                tempos.append(message.tempo)
            elif message.type == "time_signature":
                meters.append((message.numerator, message.denominator))
            elif message.type == "note_on" and message.velocity > 0:
                held.setdefault((message.channel, message.note), []).append((now, message.velocity))
            elif message.type in ("note_off", "note_on"):
                starts = held.get((message.channel, message.note))
                if starts:
                    start, velocity = starts.pop(0)
                    notes.append((index, start, now, message.note, velocity))
    return sorted(notes), tempos, meters


@pytest.mark.parametrize("prompt, overrides", CASES)
def test_output_validity(engine, tmp_path, prompt, overrides):
    result = engine.generate(prompt, overrides)
    audio = engine.render(result.midi, 48000, **render_options(result.spec))
    spec = spec_json(result.spec)
    midi, time_reference = clip_at_bar(spec, result.midi, audio.sample_rate)
    out = tmp_path / "clip"
    write_clip(out, spec, midi, audio.sample_rate, audio.parts, audio.mix, time_reference=time_reference)

    # WAV: soundfile reads back what the client received, to within one 24-bit step
    compared = 0
    for name, received in [*audio.parts.items(), ("mix", audio.mix)]:
        path = out / "stems" / f"{name}.wav" if name != "mix" else out / "mix.wav"
        if not path.exists():  # stem file names are the part names made safe
            [path] = [p for p in (out / "stems").glob("*.wav") if p.stem.startswith(name[:8])]
        data, rate = soundfile.read(path, dtype="float64", always_2d=True)
        info = soundfile.info(path)
        assert (rate, info.subtype, data.shape) == (audio.sample_rate, "PCM_24", received.shape), path
        expected = np.clip(received.astype(np.float64), -1.0, 1.0 - STEP_24_BIT)
        assert np.abs(data - expected).max() <= STEP_24_BIT, path
        compared += data.size
    assert compared > 0

    # MIDI: mido and symusic read back the Score decoded from the bytes written
    written = smf_to_score(midi)
    assert (out / "clip.mid").read_bytes() == midi
    by_symusic = Score.from_file(str(out / "clip.mid"))
    assert by_symusic.ticks_per_quarter == written.ticks_per_quarter
    assert _notes_symusic(by_symusic) == _notes_symusic(written) and _notes_symusic(written)
    mido_notes, tempos, meters = _notes_mido(out / "clip.mid")
    assert mido_notes == _notes_symusic(written)
    assert [round(60_000_000 / t, 3) for t in tempos] == [round(t.qpm, 3) for t in written.tempos]
    assert meters == [(m.numerator, m.denominator) for m in written.time_signatures]
    if time_reference == 0:  # at bar 1 the clip is the engine's own Score
        assert _notes_symusic(by_symusic) == _notes_symusic(smf_to_score(result.midi))

    # DAWproject: both documents validate against the XSDs; its audio is the stems
    placement = place(out, tmp_path / "song.dawproject")
    with zipfile.ZipFile(placement.project) as archive:
        _validate(archive.read("project.xml"), "Project.xsd")
        _validate(archive.read("metadata.xml"), "MetaData.xsd")
        media = [n for n in archive.namelist() if n.endswith(".wav")]
        assert media
        for name in media:
            with archive.open(name) as handle:
                data, _ = soundfile.read(handle, dtype="float64", always_2d=True)
            matches = [p for p in (out / "stems").glob("*.wav") if p.stem in Path(name).stem] or [out / "mix.wav"]
            stem, _ = soundfile.read(matches[0], dtype="float64", always_2d=True)
            assert np.array_equal(data, stem), name
    print(f"{prompt!r}: {len(audio.parts)} stems + mix ({compared} samples) equal within 2**-23; "
          f"{len(mido_notes)} notes equal in mido and symusic; DAWproject valid with {len(media)} audio files")
