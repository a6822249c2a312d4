"""DAWproject files (.dawproject): the open project format of Bitwig Studio, Studio One and Cubase.

A ZIP holding ``project.xml`` (schema Project.xsd), ``metadata.xml`` (MetaData.xsd) and media.
The arrangement's time unit is beats (quarter notes); tempo and meter are set in ``Transport``
and, when they change, in ``TempoAutomation`` / ``TimeSignatureAutomation``. Each stem becomes
an audio track whose clip sits at the bar; its audio goes through ``Warps`` (content in seconds)
so a DAW knows how the rendered seconds map onto beats. Each MIDI part becomes a notes track.
Every document written is validated against the official schemas (copied in ``schemas/``).
"""
from __future__ import annotations

import itertools
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import mido
from lxml import etree

from bridge.atomic import atomic_path
from bridge.timeline.clip import MidiPart
from bridge.timeline.errors import TimelineError
from bridge.timeline.tempo_map import MeterChange, TempoChange, TempoMap, TempoMapError

SCHEMAS = Path(__file__).parent / "schemas"
FORMAT_VERSION = "1.0"
APPLICATION = ("Cadenza", "0.1.0")


class DawprojectError(TimelineError, ValueError):
    """A .dawproject that cannot be read, or a document that fails the official schema."""


@dataclass(frozen=True)
class AudioClip:
    """A stem to place: track name, path inside the ZIP, channels, rate, length, and its beats<->seconds."""

    track: str
    path: str
    channels: int
    sample_rate: int
    seconds: float      # the file's length
    beats: float        # the clip's length on the arrangement
    warp_seconds: float  # seconds of audio that ``beats`` spans (the clip's own tempo)


def _schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / name)))


def validate(document: etree._Element, schema: str) -> None:
    """Raise DawprojectError listing the schema's complaints if ``document`` fails ``schema``."""
    checker = _schema(schema)
    if not checker.validate(document):
        errors = "; ".join(f"line {e.line}: {e.message}" for e in list(checker.error_log)[:5])
        raise DawprojectError(f"the document fails {schema}: {errors}")


def _num(value: float) -> str:
    return repr(float(value))


class _Ids:
    """Fresh xs:ID values that do not clash with the ones a project already has."""

    def __init__(self, root: etree._Element | None = None) -> None:
        self.taken = {e.get("id") for e in root.iter() if e.get("id")} if root is not None else set()
        self.counter = itertools.count(1)

    def __call__(self, prefix: str) -> str:
        while True:
            candidate = f"cadenza-{prefix}{next(self.counter)}"
            if candidate not in self.taken:
                self.taken.add(candidate)
                return candidate


def new_project(tempo_map: TempoMap) -> etree._Element:
    """An empty project: application, transport with tempo and meter, a master channel, an arrangement."""
    ids = _Ids()
    root = etree.Element("Project", version=FORMAT_VERSION)
    etree.SubElement(root, "Application", name=APPLICATION[0], version=APPLICATION[1])
    transport = etree.SubElement(root, "Transport")
    first, meter = tempo_map.tempos[0], tempo_map.meters[0]
    etree.SubElement(transport, "Tempo", id=ids("tempo"), name="Tempo", unit="bpm", value=_num(first.bpm),
                     min="20.0", max="999.0")
    etree.SubElement(transport, "TimeSignature", id=ids("meter"), numerator=str(meter.numerator),
                     denominator=str(meter.denominator))
    structure = etree.SubElement(root, "Structure")
    master = etree.SubElement(structure, "Track", id=ids("track"), name="Master", contentType="audio notes",
                              loaded="true")
    etree.SubElement(master, "Channel", id=ids("channel"), role="master", audioChannels="2")
    arrangement = etree.SubElement(root, "Arrangement", id=ids("arrangement"))
    etree.SubElement(arrangement, "Lanes", id=ids("lanes"), timeUnit="beats")
    if len(tempo_map.tempos) > 1:
        points = etree.SubElement(arrangement, "TempoAutomation", id=ids("tempo-points"), unit="bpm",
                                  timeUnit="beats")
        etree.SubElement(points, "Target", parameter=transport.find("Tempo").get("id"))
        for change in tempo_map.tempos:
            etree.SubElement(points, "RealPoint", time=_num(change.beat), value=_num(change.bpm),
                             interpolation="hold")
    if len(tempo_map.meters) > 1:
        points = etree.SubElement(arrangement, "TimeSignatureAutomation", id=ids("meter-points"),
                                  timeUnit="beats")
        etree.SubElement(points, "Target", parameter=transport.find("TimeSignature").get("id"))
        for beat, change in tempo_map.meters_in_beats():
            etree.SubElement(points, "TimeSignaturePoint", time=_num(beat), numerator=str(change.numerator),
                             denominator=str(change.denominator))
    return root


def _time_unit(element: etree._Element) -> str:
    """The time unit in force at ``element`` (inherited from its ancestors; beats by default)."""
    for node in itertools.chain([element], element.iterancestors()):
        if node.get("timeUnit"):
            return node.get("timeUnit")
    return "beats"


def tempo_map_from_project(root: etree._Element) -> TempoMap | None:
    """The project's tempo map from its transport and tempo/meter automation (times in beats)."""
    tempo = root.find("Transport/Tempo")
    if tempo is None or tempo.get("value") is None:
        return None
    tempos = {0.0: float(tempo.get("value"))}
    for point in root.iterfind("Arrangement/TempoAutomation/RealPoint"):
        if _time_unit(point.getparent()) != "beats":
            raise TempoMapError("the project's tempo automation is in seconds; only beats are read")
        if point.get("interpolation", "hold") != "hold":
            raise TempoMapError(f"the project's tempo ramps at beat {point.get('time')}; only held tempo "
                                "points can be placed against")
        tempos[float(point.get("time"))] = float(point.get("value"))
    signature = root.find("Transport/TimeSignature")
    meters_by_beat = {0.0: (int(signature.get("numerator")), int(signature.get("denominator")))
                      if signature is not None else (4, 4)}
    for point in root.iterfind("Arrangement/TimeSignatureAutomation/TimeSignaturePoint"):
        meters_by_beat[float(point.get("time"))] = (int(point.get("numerator")), int(point.get("denominator")))
    meters: list[MeterChange] = []
    last_beat = 0.0
    for beat in sorted(meters_by_beat):
        numerator, denominator = meters_by_beat[beat]
        if not meters:
            meters.append(MeterChange(1, numerator, denominator))
            continue
        bars = (beat - last_beat) / meters[-1].quarters_per_bar
        if abs(bars - round(bars)) > 1e-6:
            raise TempoMapError(f"the project changes meter at beat {beat:g}, which is not on a bar line")
        meters.append(MeterChange(meters[-1].bar + round(bars), numerator, denominator))
        last_beat = beat
    return TempoMap(tuple(TempoChange(beat, bpm) for beat, bpm in sorted(tempos.items())), tuple(meters))


def _add_track(root: etree._Element, ids: _Ids, name: str, content: str, channels: int) -> tuple[str, etree._Element]:
    structure = root.find("Structure")
    if structure is None:
        structure = etree.Element("Structure")
        before = root.find("Transport") if root.find("Transport") is not None else root.find("Application")
        before.addnext(structure)
    master = next((c for c in structure.iter("Channel") if c.get("role") == "master"), None)
    track_id = ids("track")
    track = etree.SubElement(structure, "Track", id=track_id, name=name, contentType=content, loaded="true")
    channel = etree.SubElement(track, "Channel", id=ids("channel"), role="regular", audioChannels=str(channels))
    if master is not None and master.get("id"):
        channel.set("destination", master.get("id"))
    arrangement = root.find("Arrangement")
    if arrangement is None:
        arrangement = etree.Element("Arrangement", id=ids("arrangement"))
        structure.addnext(arrangement)
    lanes = arrangement.find("Lanes")
    if lanes is None:
        lanes = etree.Element("Lanes", id=ids("lanes"), timeUnit="beats")
        arrangement.insert(0, lanes)
    if _time_unit(lanes) != "beats":
        raise DawprojectError("the project's arrangement is timed in seconds; only beat-timed arrangements "
                              "are supported")
    track_lanes = etree.SubElement(lanes, "Lanes", id=ids("lanes"), track=track_id)
    clips = etree.SubElement(track_lanes, "Clips", id=ids("clips"))
    return track_id, clips


def add_audio(root: etree._Element, clips: Sequence[AudioClip], at_beat: float) -> None:
    """One audio track per stem with a clip at ``at_beat`` (warped: the clip's beats <-> its seconds)."""
    ids = _Ids(root)
    for item in clips:
        _, lane = _add_track(root, ids, item.track, "audio", item.channels)
        clip = etree.SubElement(lane, "Clip", name=item.track, time=_num(at_beat), duration=_num(item.beats),
                                playStart="0.0")
        warps = etree.SubElement(clip, "Warps", id=ids("warps"), contentTimeUnit="seconds", timeUnit="beats")
        audio = etree.SubElement(warps, "Audio", id=ids("audio"), channels=str(item.channels),
                                 sampleRate=str(item.sample_rate), duration=_num(item.seconds),
                                 algorithm="stretch")
        etree.SubElement(audio, "File", path=item.path)
        etree.SubElement(warps, "Warp", time="0.0", contentTime="0.0")
        etree.SubElement(warps, "Warp", time=_num(item.beats), contentTime=_num(item.warp_seconds))


def add_notes(root: etree._Element, parts: Sequence[MidiPart], at_beat: float, beats: float) -> None:
    """One notes track per MIDI part with a clip at ``at_beat``; note times relative to the clip."""
    ids = _Ids(root)
    for part in parts:
        _, lane = _add_track(root, ids, part.name, "notes", 2)
        clip = etree.SubElement(lane, "Clip", name=part.name, time=_num(at_beat), duration=_num(beats),
                                playStart="0.0")
        notes = etree.SubElement(clip, "Notes", id=ids("notes"))
        for start, end, message in _note_spans(part.events):
            etree.SubElement(notes, "Note", time=_num(start), duration=_num(max(end - start, 1e-6)),
                             channel=str(message.channel), key=str(message.note), vel=_num(message.velocity / 127),
                             rel=_num(message.velocity / 127))


def _note_spans(events: Iterable[tuple[float, mido.Message]]) -> list[tuple[float, float, mido.Message]]:
    """(start, end, note_on) for every note, pairing each note_on with the next note_off of its key."""
    open_notes: dict[tuple[int, int], list[tuple[float, mido.Message]]] = {}
    spans = []
    for beat, message in events:
        if message.type == "note_on" and message.velocity > 0:
            open_notes.setdefault((message.channel, message.note), []).append((beat, message))
        elif message.type in ("note_off", "note_on"):
            waiting = open_notes.get((message.channel, message.note))
            if waiting:
                start, on = waiting.pop(0)
                spans.append((start, beat, on))
    return sorted(spans, key=lambda span: (span[0], span[2].note))


def metadata(title: str, comment: str = "", genre: str = "") -> etree._Element:
    """metadata.xml's document."""
    root = etree.Element("MetaData")
    etree.SubElement(root, "Title").text = title
    if genre:
        etree.SubElement(root, "Genre").text = genre
    if comment:
        etree.SubElement(root, "Comment").text = comment
    return root


def read(path: Path) -> tuple[etree._Element, etree._Element | None]:
    """project.xml and metadata.xml (if present) of a .dawproject."""
    try:
        with zipfile.ZipFile(path) as archive:
            project = etree.fromstring(archive.read("project.xml"))
            names = archive.namelist()
            meta = etree.fromstring(archive.read("metadata.xml")) if "metadata.xml" in names else None
    except (zipfile.BadZipFile, KeyError, etree.XMLSyntaxError) as error:
        raise DawprojectError(f"{path} is not a readable .dawproject (a ZIP with project.xml): {error}") from None
    return project, meta


def write(path: Path, project: etree._Element, meta: etree._Element, media: dict[str, bytes],
          base: Path | None = None) -> None:
    """Validate both documents, then write the ZIP atomically: ``base``'s other entries, then ``media``.

    Never replaces an existing file at ``path``.
    """
    validate(project, "Project.xsd")
    validate(meta, "MetaData.xsd")
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("project.xml", etree.tostring(project, xml_declaration=True, encoding="UTF-8",
                                                        pretty_print=True, standalone=True))
        archive.writestr("metadata.xml", etree.tostring(meta, xml_declaration=True, encoding="UTF-8",
                                                         pretty_print=True, standalone=True))
        if base is not None:
            with zipfile.ZipFile(base) as old:
                for info in old.infolist():
                    if info.filename not in ("project.xml", "metadata.xml") and info.filename not in media:
                        archive.writestr(info, old.read(info.filename))
        for name, data in media.items():
            archive.writestr(name, data, compress_type=zipfile.ZIP_STORED)


def free_media_name(taken: Iterable[str], folder: str, name: str) -> str:
    """``folder/name`` or ``folder/name-N.ext``, whichever is not in ``taken``."""
    taken = set(taken)
    stem, dot, ext = name.rpartition(".")
    candidate, n = f"{folder}/{name}", 1
    while candidate in taken:
        n += 1
        candidate = f"{folder}/{stem}-{n}{dot}{ext}"
    return candidate


def zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()

