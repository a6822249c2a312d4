"""Put a clip folder into a project at a bar: the format is picked by the project's extension.

`.mid`/`.midi` -> Standard MIDI File, `.RPP`/`.rpp` -> REAPER, `.dawproject` -> DAWproject,
`.ardour` or a folder (no extension) -> Ardour session. The project's own tempo map decides where
the bar is (the clip's spec when the project has none or does not exist yet). Nothing the user has
is replaced: a new project is created where none exists; an existing one gets a sibling
``<name>-cadenza[-N].<ext>`` (an Ardour session gets a new snapshot), and media go into a fresh
folder beside it. Stems are Broadcast WAVs whose time reference is the bar's sample.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import soundfile

from bridge.atomic import write_bytes
from bridge.bwf import write_bwf
from bridge.timeline import dawproject, reaper, smf
from bridge.timeline.clip import Clip, MidiPart, midi_parts, read_clip
from bridge.timeline.errors import TimelineError
from bridge.timeline.tempo_map import TempoMap
from engine.config import START_BAR_MAX, START_BAR_MIN

FORMATS = {".mid": "smf", ".midi": "smf", ".rpp": "reaper", ".dawproject": "dawproject", ".ardour": "ardour"}
ACCEPTED = ".dawproject, .RPP/.rpp, .mid/.midi, .ardour or an Ardour session folder"


class PlaceError(TimelineError, ValueError):
    """The project cannot take the clip (unknown format, bad bar, unreadable project)."""


@dataclass(frozen=True)
class Placement:
    """Where the clip went: the project file written, the bar and its beat/seconds, the media written."""

    kind: str
    project: Path
    at_bar: int
    beat: float
    seconds: float
    media: tuple[Path, ...] = ()
    notes: tuple[str, ...] = field(default=())


def project_kind(project: Path) -> str:
    """The format ``project`` names by its extension (a folder or no extension: an Ardour session)."""
    project = Path(project)
    kind = FORMATS.get(project.suffix.lower())
    if kind:
        return kind
    if project.is_dir() or project.suffix == "":
        return "ardour"
    raise PlaceError(f"cannot tell the project format of {project}: accepted are {ACCEPTED}")


def free_sibling(project: Path) -> Path:
    """``<stem>-cadenza<ext>`` (or ``-cadenza-N``) beside ``project``, a name nothing has yet."""
    candidate, n = project.with_name(f"{project.stem}-cadenza{project.suffix}"), 1
    while candidate.exists():
        n += 1
        candidate = project.with_name(f"{project.stem}-cadenza-{n}{project.suffix}")
    return candidate


def _free_folder(folder: Path) -> Path:
    candidate, n = folder, 1
    while candidate.exists():
        n += 1
        candidate = folder.with_name(f"{folder.name}-{n}")
    return candidate


def clip_at_bar(spec: dict, midi: bytes, sample_rate: int) -> tuple[bytes, int]:
    """For `cadenza generate --at BAR`: the clip's SMF moved to its bar under its own tempo, and the bar's
    sample (the stems' bext time reference). Bar 1 keeps the engine's bytes unchanged."""
    meter = spec["meter"]
    tempo_map = TempoMap.constant(float(spec["tempo_bpm"]), int(meter["numerator"]), int(meter["denominator"]))
    bar = int(spec.get("start_bar") or 1)
    if bar == 1:
        return midi, 0
    moved = smf.clip_smf(tempo_map, midi_parts(midi), bar, key=smf.key_of_smf(midi))
    return moved, tempo_map.bar_to_sample(bar, sample_rate)


# What happens to a clip whose tempo is not the project's, by project kind: what each writer does.
_TEMPO_OUTCOME = {
    "smf": "the MIDI follows the project; the stems beside it keep their own tempo",
    "reaper": "the MIDI follows the project, the audio items start on the bar but keep their own tempo",
    "dawproject": "the MIDI follows the project and the audio is warped (stretched) to its beats",
    "ardour": "Ardour gets the stems only (no MIDI tracks), which start on the bar but keep their own tempo",
}


def _mismatch_notes(clip: Clip, tempo_map: TempoMap, at_bar: int, kind: str) -> list[str]:
    """Say so when the project's tempo or meter over the clip differ from what the stems were rendered at,
    and what the ``kind`` of project does about it."""
    notes = []
    start = tempo_map.bar_to_beat(at_bar)
    spec_bpm = float(clip.spec["tempo_bpm"])
    changes = [t for t in tempo_map.tempos if start < t.beat < start + clip.beats]
    bpm = tempo_map.tempo_at(start)
    if changes or abs(bpm - spec_bpm) > 1e-3:
        notes.append(f"the stems were rendered at {spec_bpm:g} BPM but the project runs at {bpm:g} BPM at bar "
                     f"{at_bar}{' and changes tempo under the clip' if changes else ''}: {_TEMPO_OUTCOME[kind]} "
                     f"(generate with --tempo {bpm:g})")
    meter = tempo_map.meter_at_bar(at_bar)
    own = clip.spec["meter"]
    if (meter.numerator, meter.denominator) != (int(own["numerator"]), int(own["denominator"])):
        notes.append(f"the clip is in {own['numerator']}/{own['denominator']} but the project is in "
                     f"{meter.numerator}/{meter.denominator} at bar {at_bar}")
    return notes


def write_stems(clip: Clip, folder: Path, tempo_map: TempoMap, at_bar: int) -> list[tuple[Path, int]]:
    """Each stem as a Broadcast WAV in ``folder`` (which must not exist) with its time reference at the bar;
    returns (path, time reference)."""
    written = []
    for stem in clip.stems:
        audio, rate = soundfile.read(str(stem.path), dtype="float32", always_2d=True)
        position = tempo_map.bar_to_sample(at_bar, rate)
        path = folder / f"{stem.name}.wav"
        write_bwf(path, audio, rate, position, description=f"Cadenza stem {stem.name}, bar {at_bar}")
        written.append((path, position))
    return written


def place(clip_dir: Path, project: Path, at_bar: int | None = None) -> Placement:
    """Place the clip in ``clip_dir`` into ``project`` at ``at_bar`` (default: the bar it was made for)."""
    clip = read_clip(Path(clip_dir))
    at_bar = clip.start_bar if at_bar is None else at_bar
    if not START_BAR_MIN <= at_bar <= START_BAR_MAX:
        raise PlaceError(f"--at must be a bar number {START_BAR_MIN}-{START_BAR_MAX} (bars count from 1), "
                         f"got {at_bar}")
    project = Path(project)
    kind = project_kind(project)
    handler = {"smf": _place_smf, "reaper": _place_reaper, "dawproject": _place_dawproject,
               "ardour": _place_ardour}[kind]
    return handler(clip, project, at_bar)


def _place_smf(clip: Clip, project: Path, at_bar: int) -> Placement:
    if project.exists():
        data = project.read_bytes()
        if data[:4] != b"MThd":
            raise PlaceError(f"{project} is not a Standard MIDI File (it does not start with 'MThd')")
        try:
            tempo_map = smf.tempo_map_from_smf(data) or clip.tempo_map
            placed = smf.place_into_smf(data, clip.parts, at_bar, clip.tempo_map)
        except (OSError, EOFError, KeyError, ValueError) as error:
            if isinstance(error, TimelineError):
                raise
            raise PlaceError(f"{project} is not a readable Standard MIDI File: {error}") from None
        out = free_sibling(project)
        write_bytes(out, placed)
    else:
        tempo_map, out = clip.tempo_map, project
        write_bytes(out, smf.clip_smf(tempo_map, clip.parts, at_bar))
    media = write_stems(clip, _free_folder(out.with_name(f"{out.stem}-stems")), tempo_map, at_bar)
    return Placement("smf", out, at_bar, tempo_map.bar_to_beat(at_bar), tempo_map.bar_to_seconds(at_bar),
                     tuple(path for path, _ in media), tuple(_mismatch_notes(clip, tempo_map, at_bar, "smf")))


def _place_reaper(clip: Clip, project: Path, at_bar: int) -> Placement:
    rate = clip.stems[0].sample_rate if clip.stems else 48000
    if project.exists():
        document = reaper.load(project.read_text(errors="replace"))
        tempo_map = reaper.tempo_map_from_project(document) or clip.tempo_map
        out = free_sibling(project)
    else:
        tempo_map, out = clip.tempo_map, project
        document = reaper.new_project(tempo_map, rate)
    media = write_stems(clip, _free_folder(out.with_name(f"{out.stem}-media")), tempo_map, at_bar)
    seconds = tempo_map.bar_to_seconds(at_bar)
    items = []
    for (path, _), stem in zip(media, clip.stems, strict=True):
        items.append(reaper.ReaperItem(f"cadenza {stem.name}", str(path.relative_to(out.parent)), seconds,
                                       stem.frames / stem.sample_rate))
    reaper.add_items(document, items)
    start_beat = tempo_map.bar_to_beat(at_bar)
    reaper.add_midi_items(document, [MidiPart(f"cadenza {p.name} (MIDI)", p.events) for p in clip.parts], seconds,
                          tempo_map.beat_to_seconds(start_beat + clip.beats) - seconds, clip.beats)
    write_bytes(out, reaper.dump(document).encode())
    return Placement("reaper", out, at_bar, tempo_map.bar_to_beat(at_bar), seconds,
                     tuple(path for path, _ in media), tuple(_mismatch_notes(clip, tempo_map, at_bar, "reaper")))


def _place_dawproject(clip: Clip, project: Path, at_bar: int) -> Placement:
    if project.exists():
        document, meta = dawproject.read(project)
        tempo_map = dawproject.tempo_map_from_project(document) or clip.tempo_map
        taken = dawproject.zip_names(project)
        out, base = free_sibling(project), project
    else:
        tempo_map, out, base, taken = clip.tempo_map, project, None, []
        document, meta = dawproject.new_project(tempo_map), None
    if meta is None:
        meta = dawproject.metadata(clip.spec.get("prompt") or clip.name, comment=clip.spec.get("prompt", ""),
                                   genre=clip.spec.get("style", ""))
    beat = tempo_map.bar_to_beat(at_bar)
    media: dict[str, bytes] = {}
    audio_clips = []
    with tempfile.TemporaryDirectory() as scratch:
        for path, _ in write_stems(clip, Path(scratch) / "stems", tempo_map, at_bar):
            stem = next(s for s in clip.stems if s.name == path.stem)
            name = dawproject.free_media_name([*taken, *media], "audio", f"cadenza-{clip.name}-{path.name}")
            media[name] = path.read_bytes()
            audio_clips.append(dawproject.AudioClip(f"cadenza {stem.name}", name, stem.channels, stem.sample_rate,
                                                    stem.frames / stem.sample_rate, clip.beats, clip.seconds))
    dawproject.add_audio(document, audio_clips, beat)
    dawproject.add_notes(document, [MidiPart(f"cadenza {p.name} (MIDI)", p.events) for p in clip.parts], beat,
                         clip.beats)
    dawproject.write(out, document, meta, media, base)
    return Placement("dawproject", out, at_bar, beat, tempo_map.bar_to_seconds(at_bar), (),
                     tuple(_mismatch_notes(clip, tempo_map, at_bar, "dawproject")))


def _place_ardour(clip: Clip, project: Path, at_bar: int) -> Placement:
    from bridge.timeline import ardour

    placed = ardour.place_into_ardour(clip, project, at_bar)
    tempo_map = ardour.tempo_map_from_session(placed.snapshot_file) or clip.tempo_map
    files = tuple(path for _, _, paths in placed.regions for path in paths)
    return Placement("ardour", placed.snapshot_file, at_bar, tempo_map.bar_to_beat(at_bar),
                     tempo_map.bar_to_seconds(at_bar), files,
                     tuple(_mismatch_notes(clip, tempo_map, at_bar, "ardour")))

