"""DAWproject files: both documents validate against the official schemas (lxml), clips sit at the bar."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import soundfile
from lxml import etree
from wavinfo import WavInfoReader

from bridge.timeline import dawproject
from bridge.timeline.place import place
from bridge.timeline.tempo_map import MeterChange, TempoChange, TempoMap

SCHEMAS = Path(dawproject.__file__).parent / "schemas"

# A project as another DAW might write it: 120 BPM with a held change to 90 at beat 16, 4/4 then 3/4
# from beat 8 (bar 3), one empty audio track routed to a master.
EXISTING = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Project version="1.0">
  <Application name="Bitwig Studio" version="5.0"/>
  <Transport>
    <Tempo unit="bpm" value="120.0" min="20.0" max="666.0" id="id1" name="Tempo"/>
    <TimeSignature denominator="4" numerator="4" id="id2"/>
  </Transport>
  <Structure>
    <Track contentType="audio" loaded="true" id="id3" name="Vocals">
      <Channel audioChannels="2" destination="id5" role="regular" id="id4"/>
    </Track>
    <Track contentType="audio notes" loaded="true" id="id6" name="Master">
      <Channel audioChannels="2" role="master" id="id5"/>
    </Track>
  </Structure>
  <Arrangement id="id7">
    <Lanes timeUnit="beats" id="id8">
      <Lanes track="id3" id="id9"><Clips id="id10"/></Lanes>
    </Lanes>
    <TempoAutomation unit="bpm" id="id11">
      <Target parameter="id1"/>
      <RealPoint time="0.0" value="120.0" interpolation="hold"/>
      <RealPoint time="16.0" value="90.0" interpolation="hold"/>
    </TempoAutomation>
    <TimeSignatureAutomation id="id12">
      <Target parameter="id2"/>
      <TimeSignaturePoint time="0.0" numerator="4" denominator="4"/>
      <TimeSignaturePoint time="8.0" numerator="3" denominator="4"/>
    </TimeSignatureAutomation>
  </Arrangement>
</Project>
"""
EXISTING_META = '<?xml version="1.0" encoding="UTF-8"?><MetaData><Title>Song</Title></MetaData>'


def _validate(data: bytes, schema: str) -> etree._Element:
    """Validate with a schema loaded here, straight from the schema files."""
    checker = etree.XMLSchema(etree.parse(str(SCHEMAS / schema)))
    document = etree.fromstring(data)
    assert checker.validate(document), checker.error_log
    return document


def _clips(project: etree._Element) -> dict[str, etree._Element]:
    tracks = {t.get("id"): t.get("name") for t in project.iter("Track")}
    return {tracks[lanes.get("track")]: clip for lanes in project.iterfind("Arrangement/Lanes/Lanes")
            for clip in lanes.iterfind("Clips/Clip")}


def test_new_dawproject_validates_and_holds_the_clip_at_its_bar(tmp_path: Path, clip_folder) -> None:
    clip = clip_folder(tempo_bpm=100.0, start_bar=3)
    placement = place(clip, tmp_path / "new.dawproject")
    with zipfile.ZipFile(placement.project) as archive:
        project = _validate(archive.read("project.xml"), "Project.xsd")
        _validate(archive.read("metadata.xml"), "MetaData.xsd")
        names = archive.namelist()
        clips = _clips(project)
        assert set(clips) == {"cadenza bass", "cadenza drums", "cadenza bass (MIDI)", "cadenza drums (MIDI)"}
        for name, element in clips.items():
            assert float(element.get("time")) == 8.0, name  # bar 3 in 4/4 = beat 8
            assert float(element.get("duration")) == 8.0    # 2 bars
        audio = clips["cadenza bass"].find("Warps/Audio")
        media = audio.find("File").get("path")
        assert media in names
        with archive.open(media) as handle:
            data = handle.read()
    (tmp_path / "bass.wav").write_bytes(data)
    # The stem inside is a Broadcast WAV at the bar: 4.8 s at 100 BPM = 230400 samples at 48 kHz.
    assert WavInfoReader(str(tmp_path / "bass.wav")).bext.time_reference == 230400
    assert soundfile.info(str(tmp_path / "bass.wav")).frames == round(float(audio.get("duration")) * 48000)
    assert project.find("Transport/Tempo").get("value") == "100.0"
    notes = clips["cadenza bass (MIDI)"].findall("Notes/Note")
    assert float(notes[0].get("time")) == 0.0 and int(notes[0].get("key")) == 36


def test_place_into_existing_dawproject_uses_its_tempo_map(tmp_path: Path, clip_folder) -> None:
    project_path = tmp_path / "song.dawproject"
    with zipfile.ZipFile(project_path, "w") as archive:
        archive.writestr("project.xml", EXISTING)
        archive.writestr("metadata.xml", EXISTING_META)
        archive.writestr("audio/vocals.wav", b"not really audio, but must be carried over")
    original = project_path.read_bytes()

    placement = place(clip_folder(tempo_bpm=90.0), project_path, 6)

    assert project_path.read_bytes() == original, "the user's file must not change"
    assert placement.project == tmp_path / "song-cadenza.dawproject"
    # bar 6: bars 1-2 of 4/4 (8 beats) + 3 bars of 3/4 = beat 17; 16 beats at 120 (8 s) + 1 at 90
    assert placement.beat == 17.0
    assert placement.seconds == pytest.approx(8.0 + 60 / 90)
    with zipfile.ZipFile(placement.project) as archive:
        project = _validate(archive.read("project.xml"), "Project.xsd")
        meta = _validate(archive.read("metadata.xml"), "MetaData.xsd")
        assert archive.read("audio/vocals.wav") == b"not really audio, but must be carried over"
    assert meta.findtext("Title") == "Song"
    clips = _clips(project)
    assert float(clips["cadenza drums"].get("time")) == 17.0
    assert [t.get("name") for t in project.iter("Track")][:2] == ["Vocals", "Master"]
    ids = [e.get("id") for e in project.iter() if e.get("id")]
    assert len(ids) == len(set(ids))
    master = next(c for c in project.iter("Channel") if c.get("role") == "master").get("id")
    assert all(c.get("destination") == master for c in project.iter("Channel") if c.get("role") == "regular")
    back = dawproject.tempo_map_from_project(project)
    assert [(t.beat, t.bpm) for t in back.tempos] == [(0.0, 120.0), (16.0, 90.0)]
    assert [(m.bar, m.numerator) for m in back.meters] == [(1, 4), (3, 3)]


def test_new_project_with_tempo_and_meter_changes_validates() -> None:
    tempo = TempoMap((TempoChange(0.0, 120.0), TempoChange(16.0, 90.0)), (MeterChange(1, 4, 4), MeterChange(3, 3, 4)))
    project = dawproject.new_project(tempo)
    _validate(etree.tostring(project), "Project.xsd")
    assert dawproject.tempo_map_from_project(project) == tempo


def test_a_document_that_fails_the_schema_is_not_written(tmp_path: Path) -> None:
    bad = etree.fromstring("<Project version='1.0'><Transport/></Project>")  # no Application
    with pytest.raises(dawproject.DawprojectError, match="Project.xsd"):
        dawproject.write(tmp_path / "bad.dawproject", bad, dawproject.metadata("x"), {})
    assert not (tmp_path / "bad.dawproject").exists()


def test_a_clip_at_another_tempo_is_warped_and_the_note_says_so(tmp_path: Path, clip_folder) -> None:
    project_path = tmp_path / "song.dawproject"
    with zipfile.ZipFile(project_path, "w") as archive:
        archive.writestr("project.xml", EXISTING)
        archive.writestr("metadata.xml", EXISTING_META)
    placement = place(clip_folder(tempo_bpm=100.0), project_path, 6)  # the project runs at 90 BPM there
    assert any("the audio is warped (stretched) to its beats" in note for note in placement.notes), placement.notes
    with zipfile.ZipFile(placement.project) as archive:
        project = _validate(archive.read("project.xml"), "Project.xsd")
    assert {audio.get("algorithm") for audio in project.iter("Audio")} == {"stretch"}
