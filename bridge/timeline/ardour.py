"""Ardour sessions: the clip's stems as regions on new tracks, at the bar, in a new snapshot.

Ardour 7.3's Lua cannot import audio headlessly, so the work is split the way PLATFORM.md
found it works: Ardour's own `ardour7-lua` (dummy backend, no JACK needed) creates the session
if there is none and adds one audio track per stem, saving a *new snapshot* (the user's
.ardour file is never written); then this module writes the mono source files into the
session's interchange folder and adds Source and Region entries to that snapshot's XML.
Positions are superclock units: samples x 282240000 / sample rate.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from lxml import etree

from bridge.atomic import write_bytes
from bridge.bwf import write_bwf
from bridge.paths import PathEscape, confine
from bridge.timeline.clip import Clip
from bridge.timeline.errors import TimelineError
from bridge.timeline.tempo_map import MeterChange, TempoChange, TempoMap, TempoMapError

SUPERCLOCK_RATE = 282240000  # superclock ticks per second (Ardour 7's audio time unit)
ARDOUR_TICKS_PER_BEAT = 1920
LUA_TIMEOUT_S = 120
ARDOUR_LUA = "ardour7-lua"


class ArdourError(TimelineError, RuntimeError):
    """Ardour is missing or failed."""


class ArdourSessionError(TimelineError, ValueError):
    """The path named is not a session Cadenza can add to (the message says what is accepted)."""


@dataclass(frozen=True)
class ArdourSession:
    """A session folder and one snapshot (``<folder>/<snapshot>.ardour``) in it."""

    folder: Path
    snapshot: str

    @property
    def file(self) -> Path:
        return self.folder / f"{self.snapshot}.ardour"

    @property
    def audiofiles(self) -> Path:
        return self.folder / "interchange" / self.folder.name / "audiofiles"


def superclock(samples: int, sample_rate: int) -> int:
    """Samples -> Ardour superclock units (exact for Ardour's supported rates)."""
    return samples * SUPERCLOCK_RATE // sample_rate


def find_session(project: Path) -> ArdourSession | None:
    """The session ``project`` names (a folder or a .ardour file), or None if it does not exist yet."""
    project = Path(project)
    if project.suffix == ".ardour":
        return ArdourSession(project.parent, project.stem) if project.is_file() else None
    if project.is_dir():
        named = project / f"{project.name}.ardour"
        if named.is_file():
            return ArdourSession(project, project.name)
        snapshots = sorted(project.glob("*.ardour"))
        if len(snapshots) == 1:
            return ArdourSession(project, snapshots[0].stem)
        if snapshots:
            raise ArdourSessionError(f"{project} has {len(snapshots)} .ardour snapshots and none named "
                                     f"{project.name}.ardour; pass the snapshot file itself")
        if any(project.iterdir()):
            raise ArdourSessionError(f"{project} is not an Ardour session (it holds no .ardour file) and is not "
                                     "empty; refusing to write into it. Name a session folder, a .ardour file, "
                                     "or a folder that does not exist yet")
    return None


def tempo_map_from_session(xml_path: Path) -> TempoMap | None:
    """The session's tempo map (constant tempos and meters; a ramped tempo is refused)."""
    root = etree.parse(str(xml_path)).getroot()
    node = root.find("TempoMap")
    if node is None:
        return None
    tempos = []
    for tempo in node.iterfind("Tempos/Tempo"):
        note_type = float(tempo.get("note-type", "4"))
        npm, enpm = float(tempo.get("npm")), float(tempo.get("enpm", tempo.get("npm")))
        if abs(npm - enpm) > 1e-9 and tempo.get("continuing", "0") == "0" and "Ramp" in tempo.get("type", ""):
            raise TempoMapError(f"{xml_path} has a ramped tempo ({npm:g} to {enpm:g}); only constant tempo "
                                "steps can be placed against")
        beats, ticks = (int(part) for part in tempo.get("quarters", "0:0").split(":"))
        tempos.append(TempoChange(beats + ticks / ARDOUR_TICKS_PER_BEAT, npm * 4.0 / note_type))
    meters = []
    for meter in node.iterfind("Meters/Meter"):
        bar, beat, tick = (int(part) for part in meter.get("bbt", "1|1|0").split("|"))
        if beat != 1 or tick != 0:
            raise TempoMapError(f"{xml_path} has a meter change off a bar line ({meter.get('bbt')})")
        meters.append(MeterChange(bar, int(float(meter.get("divisions-per-bar"))), int(meter.get("note-value"))))
    if not tempos or not meters:
        return None
    return TempoMap(tuple(sorted(tempos, key=lambda t: t.beat)), tuple(sorted(meters, key=lambda m: m.bar)))


def _lua_string(text: str) -> str:
    """``text`` as a Lua string literal (JSON's escapes, with \\uXXXX rewritten to Lua's \\u{XXXX})."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", r"\\u{\1}", json.dumps(text, ensure_ascii=True))


_LUA_PRELUDE = """
ARDOUR.config():set_hide_dummy_backend(false)
assert(AudioEngine:set_backend("None (Dummy)", "", ""), "no dummy backend")
AudioEngine:set_sample_rate({rate})
AudioEngine:start(false)
"""


def run_lua(script: str, timeout: float = LUA_TIMEOUT_S) -> str:
    """Run ``script`` in `ardour7-lua` on Ardour's dummy backend; its stdout, or ArdourError.

    The script must print CADENZA-OK when it got to its end: ardour7-lua exits 0 on Lua errors.
    """
    binary = shutil.which(ARDOUR_LUA)
    if binary is None:
        raise ArdourError(f"{ARDOUR_LUA} is not installed; Ardour 7 is needed for Ardour sessions "
                          "(Debian: apt-get install ardour)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        done = subprocess.run([binary, handle.name], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ArdourError(f"{ARDOUR_LUA} did not finish within {timeout:g} s") from None
    finally:
        Path(handle.name).unlink(missing_ok=True)
    if "CADENZA-OK" not in done.stdout:
        raise ArdourError(f"{ARDOUR_LUA} failed (exit {done.returncode}): "
                          f"{(done.stdout + done.stderr).strip()[-2000:]}")
    return done.stdout


def _add_tracks_lua(session: ArdourSession, new_snapshot: str, tracks: Sequence[tuple[str, int]],
                    sample_rate: int, create: bool) -> str:
    open_line = (f"local s = create_session({_lua_string(str(session.folder))}, {_lua_string(session.snapshot)}, "
                 f"{sample_rate})" if create else
                 f"local s = load_session({_lua_string(str(session.folder))}, {_lua_string(session.snapshot)})")
    lines = [_LUA_PRELUDE.format(rate=sample_rate), open_line, 'assert(s, "could not open the session")']
    for name, channels in tracks:
        # Outputs wired to the master bus here: Ardour's auto-connect may not have run before the save.
        lines += [f"for t in s:new_audio_track({channels}, 2, nil, 1, {_lua_string(name)}, "
                  "ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true):iter() do",
                  "  for i = 0, 1 do",
                  "    local port = t:output():audio(i)",
                  "    local master = s:master_out():input():audio(i):name()",
                  "    if not port:connected_to(master) then port:connect(master) end",
                  "  end",
                  "end"]
    lines += [f"s:save_state({_lua_string(new_snapshot)}, false, false, false, false, false)",
              "close_session()", 'print("CADENZA-OK")']
    return "\n".join(lines) + "\n"


def _free_snapshot(folder: Path, base: str) -> str:
    name, n = f"{base}-cadenza", 1
    while (folder / f"{name}.ardour").exists():
        n += 1
        name = f"{base}-cadenza-{n}"
    return name


def _free_track_names(xml_path: Path, wanted: Sequence[str]) -> list[str]:
    root = etree.parse(str(xml_path)).getroot()
    taken = {route.get("name") for route in root.iterfind("Routes/Route")}
    names = []
    for base in wanted:
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base} {n}"
        taken.add(name)
        names.append(name)
    return names


def _free_file(folder: Path, base: str) -> Path:
    path, n = folder / f"{base}.wav", 1
    while path.exists():
        n += 1
        path = folder / f"{base}-{n}.wav"
    return path


@dataclass(frozen=True)
class ArdourPlacement:
    """What was written: the snapshot file and, per track, its name, sample position and source files."""

    snapshot_file: Path
    regions: tuple[tuple[str, int, tuple[Path, ...]], ...]


def place_into_ardour(clip: Clip, project: Path, at_bar: int, tempo_map: TempoMap | None = None
                      ) -> ArdourPlacement:
    """Add the clip's stems to the session at ``project`` (created if absent) at ``at_bar``.

    The result is a new snapshot ``<snapshot>-cadenza[-N].ardour`` beside the user's; the session's
    own tempo map decides where the bar is (the clip's spec when the session is created here).
    """
    if not clip.stems:
        raise ArdourSessionError(f"{clip.folder} has no stems/*.wav to place in an Ardour session")
    rates = {stem.sample_rate for stem in clip.stems}
    if len(rates) != 1:
        raise ArdourSessionError(f"the stems of {clip.folder} have different sample rates {sorted(rates)}")
    stem_rate = rates.pop()
    session = find_session(project)
    create = session is None
    if create:
        folder = Path(project).with_suffix("") if Path(project).suffix == ".ardour" else Path(project)
        if folder.exists() and any(folder.iterdir()):
            raise ArdourSessionError(f"{folder} exists and is not an Ardour session; refusing to write into it")
        session = ArdourSession(folder, folder.name)
        new_snapshot = session.snapshot
        names = [f"cadenza {stem.name}" for stem in clip.stems]
        rate = stem_rate
        tempo_map = clip.tempo_map if tempo_map is None else tempo_map
    else:
        new_snapshot = _free_snapshot(session.folder, session.snapshot)
        names = _free_track_names(session.file, [f"cadenza {stem.name}" for stem in clip.stems])
        rate = int(etree.parse(str(session.file)).getroot().get("sample-rate"))
        tempo_map = tempo_map_from_session(session.file) or tempo_map or clip.tempo_map
    # Everything that can refuse is checked before Ardour writes anything.
    if stem_rate != rate:
        raise ArdourSessionError(f"the stems of {clip.folder} are at {stem_rate} Hz but the session runs at {rate} "
                                 f"Hz; generate the clip with --sample-rate {rate}")
    if not create:  # interchange/<name>/audiofiles must be the session's own, not a symlink out of it
        try:
            confine(session.folder, session.audiofiles.relative_to(session.folder))
        except PathEscape as escape:
            raise ArdourSessionError(str(escape)) from None
    position = tempo_map.bar_to_sample(at_bar, rate)
    if create and (len(tempo_map.tempos) > 1 or len(tempo_map.meters) > 1):
        raise ArdourSessionError("a new Ardour session gets the clip's constant tempo; a tempo map with changes "
                                 "is not written into new Ardour sessions")
    tracks = [(name, stem.channels) for name, stem in zip(names, clip.stems, strict=True)]
    existed = session.folder.exists()
    run_lua(_add_tracks_lua(session, new_snapshot, tracks, stem_rate, create))
    out = ArdourSession(session.folder, new_snapshot)
    try:
        placed = _add_stems(out, clip, names, tempo_map if create else None, position, rate)
    except BaseException:
        # Only what this call made is removed: the new snapshot, or the session it created.
        if create and not existed:
            shutil.rmtree(session.folder, ignore_errors=True)
        elif not create:
            out.file.unlink(missing_ok=True)
        raise
    return ArdourPlacement(out.file, placed)


def _add_stems(out: ArdourSession, clip: Clip, names: Sequence[str], new_tempo_map: TempoMap | None,
               position: int, rate: int) -> tuple[tuple[str, int, tuple[Path, ...]], ...]:
    """Write mono source files and add Source/Region entries to the snapshot ``out`` (a file Ardour just
    saved for this call, so it is replaced in place, atomically)."""
    tree = etree.parse(str(out.file))
    root = tree.getroot()
    if new_tempo_map is not None:
        _write_tempo_map(root, new_tempo_map)
    counter = [int(root.get("id-counter"))]

    def new_id() -> str:
        counter[0] += 1
        return str(counter[0])

    placed = []
    end = position
    for name, stem in zip(names, clip.stems, strict=True):
        audio, _ = soundfile.read(str(stem.path), dtype="float32", always_2d=True)
        files = []
        for channel in range(audio.shape[1]):
            # interchange/<name>/audiofiles must be the session's own folder, not a symlink out of it
            path = confine(out.folder, _free_file(out.audiofiles, f"{name.replace(' ', '_')}-{channel}")
                           .relative_to(out.folder))
            write_bwf(path, np.ascontiguousarray(audio[:, channel:channel + 1]), rate, position)
            files.append(path)
        _add_region(root, name, files, position, audio.shape[0], rate, new_id)
        placed.append((name, position, tuple(files)))
        end = max(end, position + audio.shape[0])
    _cover_session_range(root, position, end, rate, new_id)
    root.set("id-counter", str(counter[0] + 1))
    write_bytes(out.file, etree.tostring(tree, xml_declaration=True, encoding="UTF-8"), overwrite=True)
    return tuple(placed)


def _region(name: str, sources: Sequence[str], start: int, length: int, position: int, region_id: str,
            whole: bool) -> etree._Element:
    attrs = {
        "name": name, "muted": "0", "opaque": "1", "locked": "0", "video-locked": "0",
        "automatic": "1" if whole else "0", "whole-file": "1" if whole else "0", "import": "1", "external": "0",
        "sync-marked": "0", "left-of-split": "0", "right-of-split": "0", "hidden": "0", "position-locked": "0",
        "valid-transients": "0", "start": f"a{start}", "length": f"a{length}@a{position}",
        "sync-position": "a0", "ancestral-start": "a0", "ancestral-length": "a0@a0", "stretch": "1", "shift": "1",
        "layering-index": "0", "tags": "", "contents": "0", "envelope-active": "0", "default-fade-in": "0",
        "default-fade-out": "0", "fade-in-active": "0", "fade-out-active": "0", "scale-amplitude": "1",
        "id": region_id, "type": "audio", "first-edit": "nothing",
    }
    for index, source in enumerate(sources):
        attrs[f"source-{index}"] = source
        attrs[f"master-source-{index}"] = source
    attrs["channels"] = str(len(sources))
    region = etree.Element("Region", attrs)
    if not whole:
        etree.SubElement(region, "Envelope", default="yes")
    return region


def _add_region(root: etree._Element, track: str, files: Sequence[Path], position: int, frames: int, rate: int,
                new_id) -> None:
    route = next((r for r in root.iterfind("Routes/Route") if r.get("name") == track), None)
    if route is None or route.get("audio-playlist") is None:
        raise ArdourError(f"the snapshot has no audio track named {track!r} after Ardour added it")
    playlist = next((p for p in root.iterfind("Playlists/Playlist") if p.get("id") == route.get("audio-playlist")),
                    None)
    if playlist is None:
        raise ArdourError(f"the snapshot has no playlist for track {track!r}")
    sources = root.find("Sources")
    regions = root.find("Regions")
    source_ids = []
    for path in files:
        source_id = new_id()
        etree.SubElement(sources, "Source", {
            "name": path.name, "type": "audio", "flags": "", "id": source_id, "natural-position": "a0",
            "channel": "0", "origin": str(path.name), "gain": "1"})
        source_ids.append(source_id)
    length, at = superclock(frames, rate), superclock(position, rate)
    stem = files[0].stem.rsplit("-", 1)[0]
    regions.append(_region(stem, source_ids, 0, length, 0, new_id(), whole=True))
    playlist.append(_region(f"{stem}.1", source_ids, 0, length, at, new_id(), whole=False))


def _cover_session_range(root: etree._Element, start: int, end: int, rate: int, new_id) -> None:
    """Make the session range include [start, end) samples, so an export renders the clip."""
    locations = root.find("Locations")
    if locations is None:
        locations = etree.SubElement(root, "Locations")
    session = next((loc for loc in locations.iterfind("Location") if "IsSessionRange" in loc.get("flags", "")), None)
    if session is None:
        etree.SubElement(locations, "Location", {
            "id": new_id(), "name": "session", "start": "a0", "end": f"a{superclock(end, rate)}",
            "flags": "IsSessionRange", "locked": "0", "timestamp": "0", "cue": "0"})
        return
    old_start = int(re.sub(r"\D", "", session.get("start", "a0")) or 0)
    old_end = int(re.sub(r"\D", "", session.get("end", "a0")) or 0)
    session.set("start", f"a{min(old_start, superclock(start, rate))}")
    session.set("end", f"a{max(old_end, superclock(end, rate))}")


def _write_tempo_map(root: etree._Element, tempo_map: TempoMap) -> None:
    """Give a session created here the clip's tempo map (a single tempo and meter; checked by the caller)."""
    node = root.find("TempoMap")
    tempo = node.find("Tempos/Tempo")
    bpm = tempo_map.tempos[0].bpm
    tempo.set("npm", repr(bpm))
    tempo.set("enpm", repr(bpm))
    tempo.set("note-type", "4")
    meter = node.find("Meters/Meter")
    meter.set("divisions-per-bar", str(tempo_map.meters[0].numerator))
    meter.set("note-value", str(tempo_map.meters[0].denominator))


def region_positions_lua(session: ArdourSession, sample_rate: int = 48000) -> str:
    """A Lua script printing, as Ardour's own model sees the session, `TEMPO <quarters per minute at 0>` and
    `REGION <track>\\t<position samples>\\t<length samples>\\t<bar|beat|tick>` for every region."""
    return "\n".join([
        _LUA_PRELUDE.format(rate=sample_rate),
        f"local s = load_session({_lua_string(str(session.folder))}, {_lua_string(session.snapshot)})",
        'assert(s, "could not open the session")',
        "local tm = Temporal.TempoMap.read()",
        'print("TEMPO " .. tm:quarters_per_minute_at(Temporal.timepos_t(0)))',
        "for t in s:get_tracks():iter() do",
        "  for r in t:to_track():playlist():region_list():iter() do",
        '    print("REGION " .. t:name() .. "\\t" .. r:position():samples() .. "\\t" .. r:length():samples()',
        '          .. "\\t" .. tm:bbt_at(r:position()):str())',
        "  end",
        "end",
        "close_session()",
        'print("CADENZA-OK")',
    ]) + "\n"
