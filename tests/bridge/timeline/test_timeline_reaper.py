"""REAPER projects parsed back with the `rpp` package: items at the expected seconds."""
from __future__ import annotations

from pathlib import Path

import pytest
import rpp
from wavinfo import WavInfoReader

from bridge.timeline.place import place
from bridge.timeline.reaper import tempo_map_from_project

# As REAPER writes it: 120 BPM 4/4, a held tempo point to 90 BPM at 8 s (beat 16), and 3/4 from
# 4 s (beat 8 = bar 3; timesig 3 + 4 * 65536 = 262147). One existing track.
EXISTING = """<REAPER_PROJECT 0.1 "7.0/linux-x86_64" 1700000000
  RIPPLE 0
  TEMPO 120 4 4
  SAMPLERATE 48000 0 0
  <TEMPOENVEX
    EGUID {0D8E1C5D-6B0A-4D3B-9A4B-7C2C0B1E2F3A}
    ACT 1 -1
    VIS 1 0 1
    LANEHEIGHT 0 0
    ARM 0
    DEFSHAPE 1 -1 -1
    PT 0 120 1
    PT 4 120 1 262147
    PT 8 90 1
  >
  <TRACK {5A0C5C53-7E27-4F4B-8F6B-0C0E7F2A1B11}
    NAME Vocals
  >
>
"""


def _items(path: Path) -> dict[str, tuple[float, float, str]]:
    """Audio items: {track: (position, length, file)}."""
    project = rpp.loads(path.read_text())
    found = {}
    for track in project.findall("TRACK"):
        name = track.find("NAME")[1]
        for item in track.findall("ITEM"):
            if item.find("SOURCE").attrib == ["WAVE"]:
                found[name] = (float(item.find("POSITION")[1]), float(item.find("LENGTH")[1]),
                               item.find("SOURCE").find("FILE")[1])
    return found


def _midi_items(path: Path) -> dict[str, tuple[float, float, list[tuple[int, str]]]]:
    """MIDI items: {track: (position, length, [(tick from the item start, status byte), ...])}."""
    project = rpp.loads(path.read_text())
    found = {}
    for track in project.findall("TRACK"):
        for item in track.findall("ITEM"):
            source = item.find("SOURCE")
            if source.attrib != ["MIDI"]:
                continue
            assert source.find("HASDATA")[1:] == ["1", "960", "QN"]
            tick, events = 0, []
            for row in source:
                if isinstance(row, list) and row[0] == "E":
                    tick += int(row[1])
                    events.append((tick, row[2]))
            found[track.find("NAME")[1]] = (float(item.find("POSITION")[1]), float(item.find("LENGTH")[1]), events)
    return found


def test_items_at_the_bar_under_the_project_tempo_map(tmp_path: Path, clip_folder) -> None:
    project = tmp_path / "song.RPP"
    project.write_text(EXISTING)
    placement = place(clip_folder(tempo_bpm=90.0, meter=(3, 4)), project, 6)

    assert project.read_text() == EXISTING, "the user's file must not change"
    assert placement.project == tmp_path / "song-cadenza.RPP"
    # bar 6 = 8 beats (bars 1-2 of 4/4) + 3 bars of 3/4 = beat 17: 16 beats at 120 (8 s) + 1 at 90
    expected = 8.0 + 60 / 90
    items = _items(placement.project)
    assert set(items) == {"cadenza bass", "cadenza drums"}
    for name, (position, length, file) in items.items():
        assert position == pytest.approx(expected, abs=1e-9), name
        # 2 bars of 3/4 at 90 BPM = 4 s of audio
        assert length == pytest.approx(4.0, abs=1e-4)
        media = placement.project.parent / file
        assert media.is_file()
        # The stem is a Broadcast WAV spotted at the same place: 8.6666... s * 48000
        assert WavInfoReader(str(media)).bext.time_reference == round(expected * 48000)
    midi = _midi_items(placement.project)
    assert set(midi) == {"cadenza bass (MIDI)", "cadenza drums (MIDI)"}
    for name, (position, length, events) in midi.items():
        assert position == pytest.approx(expected, abs=1e-9), name
        assert length == pytest.approx(4.0, abs=1e-9)          # 6 quarters at 90 BPM
        assert events[0][0] == 0 and events[-1][0] == 6 * 960  # from the downbeat to the clip's end
    assert [status for _, status in midi["cadenza drums (MIDI)"][2] if status.startswith("9")][0] == "99"
    parsed = rpp.loads(placement.project.read_text())
    assert parsed.find("TEMPO")[1:] == ["120", "4", "4"]
    assert [t.find("NAME")[1] for t in parsed.findall("TRACK")][0] == "Vocals"


def test_new_project_has_the_clip_tempo_and_its_tempo_map_reads_back(tmp_path: Path, clip_folder) -> None:
    placement = place(clip_folder(tempo_bpm=100.0, start_bar=3), tmp_path / "new.rpp")
    parsed = rpp.loads(placement.project.read_text())
    assert parsed.find("TEMPO")[1:] == ["100", "4", "4"]
    assert {name: round(position, 9) for name, (position, _, _) in _items(placement.project).items()} == \
        {"cadenza bass": 4.8, "cadenza drums": 4.8}  # bar 3 at 100 BPM 4/4: 8 beats = 4.8 s
    tempo = tempo_map_from_project(parsed)
    assert tempo.bar_to_seconds(3) == pytest.approx(4.8)


def test_existing_tempo_map_is_read_from_the_envelope() -> None:
    tempo = tempo_map_from_project(rpp.loads(EXISTING))
    assert [(t.beat, t.bpm) for t in tempo.tempos] == [(0.0, 120.0), (16.0, 90.0)]
    assert [(m.bar, m.numerator, m.denominator) for m in tempo.meters] == [(1, 4, 4), (3, 3, 4)]
