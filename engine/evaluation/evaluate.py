"""Evaluation: generate for every prompt of a JSONL file and report how well the clips obey.

`cadenza eval --prompts FILE --out DIR` writes DIR/report.md, plots (PNG) and DIR/results.json:

- control accuracy per attribute: what each prompt's `expect` asks (tempo, key, meter, bars,
  roles, instruments, swing, dynamics arc; genre, mood and energy as understood), judged on the MIDI
  bytes the engine returns, read back by independent readers: mido for the file, music21's
  Krumhansl-Schmuckler key finder for the key, pretty_midi's General MIDI names for instruments;
- musicality: MusPy's five metrics (engine/evaluation/metrics.py) on the clips and on the reference set
  (engine/evaluation/reference.py: the corpus works held out of the checkpoint's training), and the gap between them;
- diversity across seeds (same prompt, different seeds) and novelty against the training set
  (longest melody run shared with any training work's top line, engine/evaluation/reference.py keeps those lines);
- latency per clip.

Generation runs in-process (understand -> compose -> SMF bytes), not over gRPC: the figures are
then the engine's own work, repeatable per seed, without process start-up or transport noise,
and the generator is a parameter, so a learned model plugs in with one argument. The gRPC path
carries the same bytes and is tested on its own.
"""
from __future__ import annotations

import io
import json
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import mido
import numpy as np
from symusic import Score

from engine.catalog import instruments, styles
from engine.compose import form
from engine.errors import SpecError
from engine.evaluation import drums as drum_eval
from engine.evaluation import metrics, parts_form, reference
from engine.evaluation.metrics import top_lines
from engine.music.midi import score_to_smf
from engine.music.spec import MusicSpec
from engine.understand.prompt import Overrides, understand

EXPECT_KEYS = ("tempo_bpm", "tempo_max", "tempo_min", "key", "meter", "bars", "roles", "roles_absent", "instruments",
               "genre", "mood", "energy", "swing", "arc")
ROLES = ("drums", "bass", "melody", "chords", "pad")
# Energy as understood (the spec's 0-1 figure): "low" is below the first bound, "high" above the second.
ENERGY_BOUNDS = (0.4, 0.6)
ENERGIES = ("low", "high")
TEMPO_TOLERANCE_BPM = 0.5
# Dynamics arc: mean velocity of the last third of the bars against the first third.
ARC_MIN_CHANGE = 5.0
# An off-beat eighth counts as swung when it sits within this much of a beat of the triplet position.
SWING_WINDOW = 0.06
SIXTEENTH_SWING_WINDOW = 0.03  # swung and straight 16ths lie 1/12 of a beat apart: half the eighths' window
BASS_MEDIAN_PITCH = 48      # a pitched track whose median note is below C3 plays the bass role
NOVELTY_MAX_N = 64          # longest n-gram looked for
# Metrics whose value is a share (0-1): their gaps are also given in percentage points.
SHARE_METRICS = ("scale_consistency", "groove_consistency", "empty_beat_rate")
# Texture: polyphony and empty beats follow what plays, not how well. A clip is "one line" when its only
# pitched part plays a line role; a reference piece when it has one part. Everything else is "several voices".
ONE_LINE, SEVERAL_VOICES = "one line", "several voices"
LINE_ROLES = ("melody", "bass")

Generator = Callable[[MusicSpec], Score]


@dataclass(frozen=True)
class PromptCase:
    """One line of the prompts file: the prompt and what its clip must show."""

    prompt: str
    expect: dict
    line: int


def load_prompts(path: Path) -> list[PromptCase]:
    """Read a JSONL prompts file; ValueError naming the line and field when one is malformed."""
    cases: list[PromptCase] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ValueError(f"cannot read prompts file {path}: {error.strerror or error}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("prompt"), str) or not entry["prompt"].strip():
            raise ValueError(f"{path}:{number}: each line needs a non-empty \"prompt\" string")
        expect = entry.get("expect", {})
        if not isinstance(expect, dict):
            raise ValueError(f"{path}:{number}: \"expect\" must be an object")
        unknown = sorted(set(expect) - set(EXPECT_KEYS))
        if unknown:
            raise ValueError(f"{path}:{number}: unknown expect field(s) {', '.join(unknown)}; "
                             f"accepted: {', '.join(EXPECT_KEYS)}")
        if "energy" in expect and expect["energy"] not in ENERGIES:
            raise ValueError(f"{path}:{number}: energy must be one of {', '.join(ENERGIES)}")
        for name in ("roles", "roles_absent"):
            bad = sorted(set(expect.get(name, [])) - set(ROLES))
            if bad:
                raise ValueError(f"{path}:{number}: unknown role(s) {', '.join(bad)} in {name}; accepted: "
                                 f"{', '.join(ROLES)}")
        cases.append(PromptCase(entry["prompt"], expect, number))
    if not cases:
        raise ValueError(f"{path}: no prompts in it")
    return cases


# ---------------------------------------------------------------- reading a clip back (mido)


@dataclass
class MidiNote:
    start: int
    end: int
    pitch: int
    velocity: int
    track: int


@dataclass
class MidiTrack:
    name: str
    program: int
    is_drum: bool
    notes: list[MidiNote] = field(default_factory=list)


@dataclass
class MidiClip:
    """A Standard MIDI File as mido reads it: what a DAW importing the clip would get."""

    ticks_per_beat: int
    tempo_bpm: float | None
    meter: tuple[int, int] | None
    tracks: list[MidiTrack]

    @property
    def pitched(self) -> list[MidiNote]:
        return [n for t in self.tracks if not t.is_drum for n in t.notes]

    @property
    def all_notes(self) -> list[MidiNote]:
        return [n for t in self.tracks for n in t.notes]


def read_midi(data: bytes) -> MidiClip:
    """Parse SMF bytes with mido (not the library that wrote them)."""
    midi = mido.MidiFile(file=io.BytesIO(data))
    tempo, meter, tracks = None, None, []
    for index, track in enumerate(midi.tracks):
        now, name, program, is_drum = 0, "", 0, False
        sounding: dict[tuple[int, int], tuple[int, int]] = {}
        notes: list[MidiNote] = []
        for message in track:
            now += message.time
            if message.type == "set_tempo" and tempo is None:
                tempo = mido.tempo2bpm(message.tempo)
            elif message.type == "time_signature" and meter is None:
                meter = (message.numerator, message.denominator)
            elif message.type == "track_name":
                name = message.name
            elif message.type == "program_change":
                program = message.program
            elif message.type in ("note_on", "note_off"):
                is_drum = is_drum or message.channel == 9
                key = (message.channel, message.note)
                if message.type == "note_on" and message.velocity > 0:
                    sounding[key] = (now, message.velocity)
                elif key in sounding:
                    start, velocity = sounding.pop(key)
                    notes.append(MidiNote(start, now, message.note, velocity, index))
        if notes:
            tracks.append(MidiTrack(name, program, is_drum, sorted(notes, key=lambda n: (n.start, n.pitch))))
    return MidiClip(midi.ticks_per_beat, tempo, meter, tracks)


# ---------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    """One expectation of one prompt, judged on its clip."""

    attribute: str
    expected: str
    found: str
    ok: bool
    seed: int = 0


def find_key(clip: MidiClip) -> tuple[int, str] | None:
    """Tonic pitch class and mode by music21's Krumhansl-Schmuckler analysis, durations weighting."""
    from music21 import analysis, note, stream

    notes = clip.pitched
    if not notes:
        return None
    part = stream.Stream()
    for n in notes:
        part.insert(n.start / clip.ticks_per_beat,
                    note.Note(n.pitch, quarterLength=max(1, n.end - n.start) / clip.ticks_per_beat))
    found = analysis.discrete.KrumhanslSchmuckler().getSolution(part)
    return found.tonic.pitchClass, found.mode


# A mode is heard by its tonic and the quality of its third: the key finder names major or minor only.
MINOR_THIRD_MODES = ("minor", "aeolian", "dorian", "phrygian", "locrian")


def _expected_key(text: str) -> tuple[int, str]:
    """Tonic pitch class and "major"/"minor" for "E dorian", "Bb major", "F# minor" (modes by their third)."""
    from music21 import pitch

    tonic, _, mode = text.strip().partition(" ")
    mode = (mode or "major").lower()
    quality = "minor" if mode in MINOR_THIRD_MODES else "major"
    return pitch.Pitch(tonic.replace("b", "-") if len(tonic) > 1 else tonic).pitchClass, quality


def _tokens(text: str) -> set[str]:
    words = "".join(c if c.isalnum() else " " for c in text.lower()).split()
    return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words}


def instrument_present(clip: MidiClip, word: str) -> bool:
    """A track whose General MIDI name (pretty_midi's table) or track name holds every word of ``word``."""
    import pretty_midi

    wanted = _tokens(word)
    for track in clip.tracks:
        gm = "drums" if track.is_drum else pretty_midi.program_to_instrument_name(track.program)
        if wanted <= _tokens(gm) or wanted <= _tokens(track.name):
            return True
    return False


def roles_present(clip: MidiClip) -> set[str]:
    """Roles the clip's tracks play, judged from the notes and programs alone."""
    found: set[str] = set()
    for track in clip.tracks:
        if track.is_drum:
            found.add("drums")
            continue
        pitches = [n.pitch for n in track.notes]
        if 32 <= track.program <= 39 or statistics.median(pitches) < BASS_MEDIAN_PITCH:
            found.add("bass")
        elif 88 <= track.program <= 95:
            found.add("pad")
        else:
            onsets = {n.start for n in track.notes}
            found.add("chords" if len(track.notes) >= 2 * len(onsets) else "melody")
    return found


def swing_detected(clip: MidiClip) -> bool:
    """Swung eighths (the off-beat on the triplet position, 2/3 of the beat, more often than halfway) or
    swung sixteenths (the "e" and "a" on 1/3 and 5/6 of the beat more often than on 1/4 and 3/4: an MPC's
    swing, where the "and" stays halfway)."""
    tpb = clip.ticks_per_beat
    positions = [(n.start % tpb) / tpb for n in clip.all_notes]

    def near(*targets: float, window: float = SWING_WINDOW) -> int:
        return sum(any(abs(p - t) < window for t in targets) for p in positions)

    swung, straight = near(2 / 3), near(0.5)
    swung16 = near(1 / 3, 5 / 6, window=SIXTEENTH_SWING_WINDOW)
    straight16 = near(0.25, 0.75, window=SIXTEENTH_SWING_WINDOW)
    return (swung >= 2 and swung > straight) or (swung16 >= 2 and swung16 > straight16)


def arc_detected(clip: MidiClip, bar_ticks: int) -> str:
    """crescendo, decrescendo or steady: mean velocity of the last third of the bars vs the first."""
    notes = clip.all_notes
    if not notes:
        return "steady"
    bars = max(1, math.ceil(max(n.end for n in notes) / bar_ticks))
    third = max(1, bars // 3)
    first = [n.velocity for n in notes if n.start // bar_ticks < third]
    last = [n.velocity for n in notes if n.start // bar_ticks >= bars - third]
    if not first or not last:
        return "steady"
    change = statistics.mean(last) - statistics.mean(first)
    return "crescendo" if change >= ARC_MIN_CHANGE else "decrescendo" if change <= -ARC_MIN_CHANGE else "steady"


def check_clip(expect: dict, spec: MusicSpec, clip: MidiClip) -> list[Check]:
    """Every expectation of one prompt against its clip (and, for genre, mood and energy, its spec)."""
    checks: list[Check] = []
    meter = clip.meter or (4, 4)
    bar_ticks = round(clip.ticks_per_beat * 4 * meter[0] / meter[1])
    tempo = clip.tempo_bpm if clip.tempo_bpm is not None else 120.0  # the SMF default
    if "tempo_bpm" in expect:
        checks.append(Check("tempo", f"{expect['tempo_bpm']:g}", f"{tempo:.2f}",
                            abs(tempo - expect["tempo_bpm"]) <= TEMPO_TOLERANCE_BPM))
    if "tempo_max" in expect:
        checks.append(Check("tempo", f"<= {expect['tempo_max']:g}", f"{tempo:.2f}", tempo <= expect["tempo_max"]))
    if "tempo_min" in expect:
        checks.append(Check("tempo", f">= {expect['tempo_min']:g}", f"{tempo:.2f}", tempo >= expect["tempo_min"]))
    if "key" in expect:
        found = find_key(clip)
        wanted = _expected_key(expect["key"])
        from music21 import pitch
        shown = f"{pitch.Pitch(found[0]).name.replace('-', 'b')} {found[1]}" if found else "no pitched notes"
        checks.append(Check("key", expect["key"], shown, found == wanted))
    if "meter" in expect:
        shown = f"{meter[0]}/{meter[1]}" if clip.meter else "none (4/4 by default)"
        checks.append(Check("meter", expect["meter"], shown, clip.meter is not None
                            and f"{meter[0]}/{meter[1]}" == expect["meter"].replace(" ", "")))
    if "bars" in expect:
        notes = clip.all_notes
        bars = math.ceil(max(n.end for n in notes) / bar_ticks) if notes else 0
        checks.append(Check("bars", str(expect["bars"]), str(bars), bars == expect["bars"]))
    present = roles_present(clip)
    for role in expect.get("roles", []):
        checks.append(Check("roles", role, ", ".join(sorted(present)) or "none", role in present))
    for role in expect.get("roles_absent", []):
        checks.append(Check("roles_absent", f"no {role}", ", ".join(sorted(present)) or "none", role not in present))
    if expect.get("instruments"):
        import pretty_midi
        names = ", ".join("drums" if t.is_drum else pretty_midi.program_to_instrument_name(t.program)
                          for t in clip.tracks)
        for word in expect["instruments"]:
            checks.append(Check("instruments", word, names, instrument_present(clip, word)))
    if "swing" in expect:
        found = swing_detected(clip)
        checks.append(Check("swing", str(expect["swing"]).lower(), str(found).lower(), found == expect["swing"]))
    if "arc" in expect:
        found = arc_detected(clip, bar_ticks)
        checks.append(Check("arc", expect["arc"], found, found == expect["arc"]))
    if "genre" in expect:
        checks.append(Check("genre", expect["genre"], spec.style, spec.style == expect["genre"]))
    if "mood" in expect:
        checks.append(Check("mood", expect["mood"], spec.mood, spec.mood == expect["mood"]))
    if "energy" in expect:
        ok = spec.energy < ENERGY_BOUNDS[0] if expect["energy"] == "low" else spec.energy > ENERGY_BOUNDS[1]
        checks.append(Check("energy", expect["energy"], f"{spec.energy:.2f}", ok))
    return checks


# ---------------------------------------------------------------- diversity and novelty


def _note_set(score: Score) -> set[tuple[int, int, int]]:
    return {(t.program if not t.is_drum else -1, int(n.time), int(n.pitch)) for t in score.tracks for n in t.notes}


def diversity(scores: list[Score]) -> float:
    """Mean pairwise Jaccard distance of the clips' (instrument, onset, pitch) sets; 0 = identical."""
    sets = [_note_set(s) for s in scores]
    distances = [1 - len(a & b) / len(a | b) if a | b else 0.0
                 for i, a in enumerate(sets) for b in sets[i + 1:]]
    return float(statistics.mean(distances)) if distances else math.nan


class NoveltyIndex:
    """All interval n-grams of a set of melody lines (the training set's), to find the longest one a clip shares.

    The n-grams of each length are kept as a sorted array of 64-bit polynomial hashes (8 bytes each), built
    once per length from the one before: a repetitive clip line (a bass on one note, a taiko's two) can ask
    for every length up to NOVELTY_MAX_N, and sets of tuples of the 2 M training n-grams per length took
    over 15 GB by then; these take about 16 MB per length. A false match needs a 64-bit hash collision.
    """

    def __init__(self, lines: Iterable[tuple[int, ...]]) -> None:
        self.lines = [tuple(line) for line in lines]
        flat = [v for line in self.lines for v in line]
        owner = [k for k, line in enumerate(self.lines) for _ in line]
        self._values = np.asarray(flat, dtype=np.int64).astype(np.uint64) + np.uint64(_HASH_OFFSET)
        self._owner = np.asarray(owner, dtype=np.int64)
        self._prefix = self._values.copy()  # hash of the n-gram starting at each position, for the last n built
        self._built = 1
        self._grams: dict[int, np.ndarray] = {1: self._sorted(1)}

    def _sorted(self, n: int) -> np.ndarray:
        starts = len(self._values) - n + 1
        if starts <= 0:
            return np.zeros(0, dtype=np.uint64)
        whole = self._owner[:starts] == self._owner[n - 1:n - 1 + starts]  # the n-gram stays in one line
        return np.unique(self._prefix[:starts][whole])

    def _of(self, n: int) -> np.ndarray:
        while self._built < n:
            self._built += 1
            k = self._built
            with np.errstate(over="ignore"):
                self._prefix = self._prefix[:len(self._values) - k + 1] * np.uint64(_HASH_BASE) + self._values[k - 1:]
            self._grams[k] = self._sorted(k)
        return self._grams[n]

    def _contains(self, gram: tuple[int, ...]) -> bool:
        table = self._of(len(gram))
        key = _gram_hash(gram)
        index = int(np.searchsorted(table, key))
        return index < len(table) and table[index] == key

    def longest_shared(self, score: Score) -> int:
        """Length in notes (intervals + 1) of the longest run of the clip's melody found in the indexed lines."""
        best = 0
        for line in top_lines(score):
            n = best + 1
            while n <= min(len(line), NOVELTY_MAX_N) and any(self._contains(line[i:i + n])
                                                               for i in range(len(line) - n + 1)):
                best, n = n, n + 1
        return best + 1 if best else 0


_HASH_BASE = 1_000_003
_HASH_OFFSET = 1 << 20  # intervals are small signed integers: offset so every value is positive


def _gram_hash(gram: tuple[int, ...]) -> np.uint64:
    """The same polynomial hash NoveltyIndex builds, for one n-gram (arithmetic mod 2**64)."""
    value = np.uint64(0)
    with np.errstate(over="ignore"):
        for v in gram:
            value = value * np.uint64(_HASH_BASE) + np.uint64(v + _HASH_OFFSET)
    return value


# ---------------------------------------------------------------- running it


@dataclass
class ClipResult:
    """One prompt's clips (one per seed): the checks of all of them, per-seed figures, seed 0's spec."""

    prompt: str
    line: int
    spec: dict
    checks: list[Check]
    musicality: list[dict[str, float]]  # per seed
    latency_s: list[float]              # per seed: understand + compose + SMF
    understand_s: list[float]           # per seed: the understand part of it
    diversity: float
    novelty_n: list[int]                # per seed
    drums: list[dict] = field(default_factory=list)  # per seed with drums: engine/evaluation/drums.clip_figures
    parts: list[dict] = field(default_factory=list)  # per seed: provenance and part figures (evaluation/parts_form.py)


@dataclass
class EvalResult:
    clips: list[ClipResult]
    reference_musicality: list[dict[str, float]]
    reference_pieces: int
    first_call_s: float
    seeds: int
    # Per metric, the reference mean at the generated clips' own lengths: each clip is matched with
    # the reference pieces cut into windows of its bar count, and these means are averaged over the clips. A
    # short clip has fewer notes, and pitch-class entropy (a plug-in estimate) reads lower on fewer
    # notes: whole pieces (held-out works: median 13 bars) against 4-8-bar clips are not the same measurement.
    same_length_reference: dict[str, float] = field(default_factory=dict)
    # What the reference is (held-out works, how many, the split rule), from the reference file.
    reference_about: reference.About | None = None
    # Per reference style (chorale, folk, celtic): piece count and metric means; the split keeps the
    # corpus's proportions, so the pooled reference is mostly single-line folk tunes.
    reference_by_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    # Per reference piece (aligned with reference_musicality): its texture, ONE_LINE or SEVERAL_VOICES.
    reference_textures: list[str] = field(default_factory=list)
    # Per texture, per metric: the reference pieces of that texture cut to the bar counts of the clips
    # of that texture (same_length_reference within the texture): same texture and same length.
    texture_reference: dict[str, dict[str, float]] = field(default_factory=dict)

    def accuracy(self) -> dict[str, tuple[int, int]]:
        """Per attribute: (checks passed, checks made); "overall" sums them all."""
        table: dict[str, list[int]] = {}
        for clip in self.clips:
            for check in clip.checks:
                table.setdefault(check.attribute, [0, 0])
                table[check.attribute][0] += check.ok
                table[check.attribute][1] += 1
        table["overall"] = [sum(v[0] for v in table.values()), sum(v[1] for v in table.values())]
        return {k: (v[0], v[1]) for k, v in table.items()}


def _generate(prompt: str, seed: int, generator: Generator) -> tuple[MusicSpec, bytes, float, float]:
    """Spec, SMF bytes, and seconds spent understanding and composing (+ writing the SMF)."""
    began = time.perf_counter()
    spec = understand(prompt, Overrides(seed=seed))
    understood = time.perf_counter()
    data = score_to_smf(generator(spec))
    return spec, data, understood - began, time.perf_counter() - understood


def evaluate(cases: list[PromptCase], *, seeds: int = 3, generator: Generator | None = None,
             reference_path: str | None = None, progress: Callable[[int, int], None] | None = None) -> EvalResult:
    """Generate every prompt with seeds 0..seeds-1 and judge every clip.

    ``progress(done, total)`` is called after each prompt and once more when the reference set
    (which takes a while) is measured: total is the number of prompts plus one.
    """
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    provenance: dict = {}
    if generator is None:
        from engine.compose.pipeline import compose_with_provenance

        def generator(spec: MusicSpec) -> Score:
            score, provenance["last"] = compose_with_provenance(spec)
            return score
    began = time.perf_counter()
    try:
        understand(cases[0].prompt)  # loads the text model: reported as the first call, not per clip
    except SpecError:
        pass
    first_call = time.perf_counter() - began
    pieces = reference.load(reference_path)
    index = NoveltyIndex(reference.training_lines(reference_path))
    clips = []
    for number, case in enumerate(cases):
        checks, scores, latencies, understand_times, first_spec = [], [], [], [], None
        drum_figures: list[dict] = []
        part_entries: list[dict] = []
        for seed in range(seeds):
            try:
                spec, data, understand_s, compose_s = _generate(case.prompt, seed, generator)
            except SpecError as error:  # a prompt the engine refuses fails every expectation, visibly
                checks.append(Check("accepted", "a clip", f"refused: {error}", False, seed))
                continue
            first_spec = first_spec or spec
            checks += [replace(check, seed=seed) for check in check_clip(case.expect, spec, read_midi(data))]
            scores.append(Score.from_midi(data))
            grid = drum_eval.grid_of_score(scores[-1], spec.meter.quarters_per_bar, spec.bars, kit_names(spec))
            style = styles.get(spec.style)
            if grid is not None and style.drums.kit:  # a style's ensemble percussion is not the Groove kit
                drum_figures.append(drum_eval.clip_figures(style.drum_genre, grid, form.phrase_length(spec.bars)))
            part_entries.append(parts_form.clip_entry(scores[-1], spec, provenance.pop("last", None)))
            latencies.append(understand_s + compose_s)
            understand_times.append(understand_s)
        clips.append(ClipResult(
            prompt=case.prompt, line=case.line, spec=first_spec.to_json() if first_spec else {}, checks=checks,
            musicality=[metrics.musicality(s) for s in scores], latency_s=latencies, understand_s=understand_times,
            diversity=diversity(scores), novelty_n=[index.longest_shared(s) for s in scores], parts=part_entries,
            drums=drum_figures,
        ))
        if progress:
            progress(number + 1, len(cases) + 1)
    textures = [piece_texture(p.score) for p in pieces]
    memo: dict[tuple[str, int], dict[str, float]] = {}
    pooled = same_length_reference(clips, pieces, memo)
    texture_reference = {
        texture: same_length_reference([c for c in clips if c.spec and clip_texture(c.spec) == texture],
                                       [p for p, t in zip(pieces, textures, strict=True) if t == texture], memo)
        for texture in (ONE_LINE, SEVERAL_VOICES)}
    measured = [metrics.musicality(p.score) for p in pieces]
    if progress:
        progress(len(cases) + 1, len(cases) + 1)
    return EvalResult(clips, measured, len(pieces), first_call, seeds, pooled, reference.about(reference_path),
                      by_kind(pieces, measured), textures, texture_reference)


def clip_texture(spec: dict) -> str:
    """ONE_LINE when the clip's only pitched part plays a line (melody or bass role), else SEVERAL_VOICES."""
    pitched = [part for part in spec.get("parts", []) if not part.get("is_drum")]
    return ONE_LINE if len(pitched) == 1 and pitched[0].get("role") in LINE_ROLES else SEVERAL_VOICES


def piece_texture(score: Score) -> str:
    """ONE_LINE for a reference piece of one part (a tune), else SEVERAL_VOICES."""
    return ONE_LINE if sum(1 for t in score.tracks if len(t.notes)) == 1 else SEVERAL_VOICES


def by_texture(result: EvalResult) -> list[tuple[str, int, int, str, float, float, float, float]]:
    """Per texture and metric: (texture, clips, reference pieces, metric, generated mean, reference mean,
    reference sd, reference mean at the clips' lengths; NaN where not computed).

    Each clip is compared with the reference pieces of its own texture: a solo cello line with the
    held-out tunes, a band or a quartet with the held-out works in several parts.
    """
    rows = []
    for texture in (ONE_LINE, SEVERAL_VOICES):
        clips = [c for c in result.clips if c.spec and clip_texture(c.spec) == texture]
        real = [m for m, t in zip(result.reference_musicality, result.reference_textures, strict=True)
                if t == texture]
        if not clips or not real:
            continue
        for name in metrics.METRICS:
            g, _ = _mean_sd(m[name] for c in clips for m in c.musicality)
            r, rs = _mean_sd(m[name] for m in real)
            same_length = result.texture_reference.get(texture, {}).get(name, math.nan)
            rows.append((texture, len(clips), len(real), name, g, r, rs, same_length))
    return rows


def by_kind(pieces, measured: list[dict[str, float]] | None = None) -> dict[str, dict[str, float]]:
    """Per piece kind: {"pieces": count, metric: mean} (NaNs left out of the means).

    ``measured`` is each piece's metrics when they are already at hand (aligned with ``pieces``).
    """
    measured = measured or [metrics.musicality(piece.score) for piece in pieces]
    groups: dict[str, list[dict[str, float]]] = {}
    for piece, values in zip(pieces, measured, strict=True):
        groups.setdefault(piece.kind, []).append(values)
    return {kind: {"pieces": float(len(ms))} | {name: _mean_sd(m[name] for m in ms)[0] for name in metrics.METRICS}
            for kind, ms in sorted(groups.items())}


def same_length_reference(clips: list[ClipResult], pieces,
                          memo: dict[tuple[str, int], dict[str, float]] | None = None) -> dict[str, float]:
    """Per metric, the mean over clips of the reference at the clip's length: every piece cut into
    windows of the clip's bar count (``windows``), each piece weighing one.

    ``memo`` keeps each (piece, bar count)'s window means, so measuring the pooled reference and
    then each texture's share of it cuts and measures every piece once.
    """
    memo = {} if memo is None else memo
    by_bars: dict[int, dict[str, float]] = {}
    totals: dict[str, list[float]] = {name: [] for name in metrics.METRICS}
    for clip in clips:
        bars = int(clip.spec.get("bars", 0)) if clip.spec else 0
        if bars < 1 or not clip.musicality:
            continue
        if bars not in by_bars:
            per_piece = [_at_length(p, bars, memo) for p in pieces]
            by_bars[bars] = {name: _mean_sd(m[name] for m in per_piece)[0] for name in metrics.METRICS}
        for name in metrics.METRICS:
            totals[name] += [by_bars[bars][name]] * len(clip.musicality)
    return {name: float(np.mean(values)) for name, values in totals.items() if values}


def _at_length(piece, bars: int, memo: dict[tuple[str, int], dict[str, float]]) -> dict[str, float]:
    """A piece's metrics averaged over its windows of ``bars`` bars (NaNs left out), memoised by name."""
    key = (piece.name, bars)
    if key not in memo:
        measured = [metrics.musicality(w) for w in windows(piece.score, bars)]
        memo[key] = {name: _mean_sd(m[name] for m in measured)[0] for name in metrics.METRICS}
    return memo[key]


def windows(score: Score, bars: int) -> list[Score]:
    """The score cut into consecutive windows of ``bars`` bars, each moved to start at 0.

    Every whole window counts, not only the opening one: a piece's first bars are not its middle
    (imitative entries bring voices in one by one). A piece shorter than ``bars`` is one window.
    """
    span = bars * metrics.measure_ticks(score)
    ends = [t.notes.numpy() for t in score.tracks if len(t.notes)]
    length = max((int((a["time"] + a["duration"]).max()) for a in ends), default=0)
    count = max(1, length // span)
    return [score.clip(k * span, (k + 1) * span, clip_end=False).shift_time(-k * span) for k in range(count)]


# ---------------------------------------------------------------- the report


def _mean_sd(values: Iterable[float]) -> tuple[float, float]:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    return float(np.mean(finite)), float(np.std(finite))


def musicality_table(result: EvalResult) -> list[tuple[str, float, float, float, float, float]]:
    """(metric, generated mean, sd, reference mean, sd, gap = generated - reference) per metric."""
    rows = []
    for name in metrics.METRICS:
        g, gs = _mean_sd(m[name] for c in result.clips for m in c.musicality)
        r, rs = _mean_sd(m[name] for m in result.reference_musicality)
        rows.append((name, g, gs, r, rs, g - r))
    return rows


def near_zero(reference_mean: float, reference_sd: float) -> bool:
    """True when the reference mean is smaller than its own spread: a gap relative to it is a ratio of small numbers."""
    return not math.isnan(reference_mean) and abs(reference_mean) < reference_sd


def _relative(gap: float, reference_mean: float, flagged: bool) -> str:
    relative = gap / abs(reference_mean) if reference_mean else math.nan
    if math.isnan(relative):
        return "n/a"
    return f"{relative * 100:.1f}%" + (" (near 0, see note)" if flagged else "")


def _gap(name: str, gap: float) -> str:
    if name in SHARE_METRICS and not math.isnan(gap):
        return f"{gap:.3f} ({gap * 100:+.1f} points)"
    return _fmt(gap)


def _plots(result: EvalResult, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    accuracy = result.accuracy()
    names = [k for k in accuracy if k != "overall"] + ["overall"]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar(names, [accuracy[k][0] / accuracy[k][1] for k in names],
           color=["#4c72b0"] * (len(names) - 1) + ["#222222"])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of checks passed")
    ax.set_title("Control accuracy per attribute")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(out / "control_accuracy.png", dpi=110)
    plt.close(fig)
    files.append("control_accuracy.png")

    fig, axes = plt.subplots(1, len(metrics.METRICS), figsize=(14, 3.2))
    for ax, name in zip(axes, metrics.METRICS, strict=True):
        generated = [m[name] for c in result.clips for m in c.musicality if not math.isnan(m[name])]
        real = [m[name] for m in result.reference_musicality if not math.isnan(m[name])]
        ax.boxplot([generated, real], tick_labels=["generated", "reference"])
        ax.set_title(name.replace("_", " "), fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "musicality.png", dpi=110)
    plt.close(fig)
    files.append("musicality.png")

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist([s * 1000 for c in result.clips for s in c.latency_s], bins=20, color="#55a868")
    ax.set_xlabel("ms per clip (understand + compose + SMF)")
    ax.set_ylabel("clips")
    ax.set_title("Latency per clip")
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)
    files.append("latency.png")
    return files


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def report_markdown(result: EvalResult, prompts_file: str) -> str:
    """The report as markdown (plots referenced by file name)."""
    accuracy = result.accuracy()
    lines = [f"# Cadenza evaluation: {prompts_file}", "",
             f"{len(result.clips)} prompts, {result.seeds} seed(s) each; every clip is checked. "
             "Generation in-process (understand -> compose -> SMF bytes); every check reads the SMF back with mido, "
             "the key with music21's Krumhansl-Schmuckler finder, instruments by pretty_midi's General MIDI names. "
             "Genre and mood are judged on the spec (what was understood).", "",
             "## Control accuracy", "", "| attribute | passed | checks | accuracy |", "|---|---:|---:|---:|"]
    for name, (ok, total) in accuracy.items():
        label = f"**{name}**" if name == "overall" else name
        lines.append(f"| {label} | {ok} | {total} | {ok / total:.3f} |")
    failed = [(c, k) for c in result.clips for k in c.checks if not k.ok]
    lines += ["", "![control accuracy](control_accuracy.png)", "", "### Failed checks", ""]
    if failed:
        lines += ["| line | prompt | seed | attribute | expected | found |", "|---:|---|---:|---|---|---|"]
        lines += [f"| {c.line} | {c.prompt} | {k.seed} | {k.attribute} | {k.expected} | {k.found} |"
                  for c, k in failed]
    else:
        lines.append("None.")
    about = result.reference_about
    what = (about.description if about else f"{result.reference_pieces} pieces (engine/evaluation/reference.py)")
    lines += ["", "## Musicality (MusPy's metrics) against held-out real music", "",
              f"Reference: {what} The model never trained on these works (nor on their transpositions). "
              "Gap = generated mean - reference mean, shown three ways: as is (for shares also in percentage "
              "points), relative to the reference mean, and in reference standard deviations (how far outside the "
              "spread of real pieces the generated mean lies). The reference is mostly tunes of one line (the "
              "corpus is), the prompts mostly ensembles, so part of each gap is texture and genre, not quality: "
              "the texture table below compares like with like.", "",
              "| metric | generated mean (sd) | reference mean (sd) | gap | gap / reference mean "
              "| gap / reference sd |",
              "|---|---:|---:|---:|---:|---:|"]
    flagged = []
    for name, g, gs, r, rs, gap in musicality_table(result):
        spread = gap / rs if rs else math.nan
        if near_zero(r, rs):
            flagged.append((name, g, r, rs, gap, spread))
        lines.append(f"| {name} | {_fmt(g)} ({_fmt(gs)}) | {_fmt(r)} ({_fmt(rs)}) | {_gap(name, gap)} | "
                     f"{_relative(gap, r, near_zero(r, rs))} | {_fmt(spread, 2)} |")
    for name, g, r, rs, gap, spread in flagged:
        generated = [m[name] for c in result.clips for m in c.musicality if not math.isnan(m[name])]
        real = [m[name] for m in result.reference_musicality if not math.isnan(m[name])]
        points = f"{gap * 100:+.1f} points, " if name in SHARE_METRICS else ""
        lines += ["", f"{name}: the reference mean ({_fmt(r, 4)}) is smaller than its own sd ({_fmt(rs, 4)}), so "
                  f"the relative gap divides by a near-zero number: generated {_fmt(g, 4)} against "
                  f"{_fmt(r, 4)} reads as {_relative(gap, r, False)}, while the absolute gap is {points}"
                  f"{_fmt(spread, 2)} reference sd. Exactly 0 in {sum(v == 0 for v in generated)} of "
                  f"{len(generated)} generated clips and in {sum(v == 0 for v in real)} of {len(real)} "
                  "reference pieces."]
    if result.same_length_reference:
        lines += ["", "The same reference cut into windows of each clip's own bar count (the clips are 4-32 bars, "
                  "the reference pieces whole; pitch-class entropy counts notes, and fewer notes read lower), "
                  "averaged over the clips:", "",
                  "| metric | generated mean | reference at the clips' lengths | gap | gap / that mean |",
                  "|---|---:|---:|---:|---:|"]
        sds = {row[0]: row[4] for row in musicality_table(result)}
        for name, g, _, _, _, _ in musicality_table(result):
            r = result.same_length_reference.get(name, math.nan)
            lines.append(f"| {name} | {_fmt(g)} | {_fmt(r)} | {_gap(name, g - r)} | "
                         f"{_relative(g - r, r, near_zero(r, sds[name]))} |")
    if result.reference_by_kind:
        lines += ["", "The reference's means per kind of piece (its model style token: folk and celtic tunes are "
                  "one line; chorales, renaissance and classical works several parts):",
                  "", "| kind | pieces | " + " | ".join(metrics.METRICS) + " |",
                  "|---|---:|" + "---:|" * len(metrics.METRICS)]
        for kind, row in result.reference_by_kind.items():
            lines.append(f"| {kind} | {int(row['pieces'])} | " + " | ".join(_fmt(row[name]) for name in metrics.METRICS)
                         + " |")
    texture_rows = by_texture(result) if result.reference_textures else []
    if texture_rows:
        lines += ["", "Like with like: each clip against the reference pieces of its own texture (\"one line\": a clip "
                  "whose only pitched part plays a melody or bass line, a reference piece of one part; \"several "
                  "voices\": everything else), whole and cut into windows of the clips' own bar counts. Polyphony "
                  "and empty beats follow what plays (a solo line, a band, a quartet), and pitch-class entropy "
                  "reads lower on fewer notes, so the pooled figure above mixes texture and length with quality; "
                  "the gap here (to the same texture at the same length) does not.", "",
                  "| texture | clips | reference pieces | metric | generated mean | reference whole (sd) "
                  "| reference at the clips' lengths | gap | gap / reference mean |",
                  "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
        for texture, n_clips, n_real, name, g, r, rs, same in texture_rows:
            target = r if math.isnan(same) else same
            relative = _relative(g - target, target, near_zero(target, rs))
            lines.append(f"| {texture} | {n_clips} | {n_real} | {name} | {_fmt(g)} | {_fmt(r)} ({_fmt(rs)}) | "
                         f"{_fmt(same)} | {_gap(name, g - target)} | {relative} |")
    lines += ["", "![musicality](musicality.png)", ""]
    lines += drums_markdown(result)
    div = [c.diversity for c in result.clips if not math.isnan(c.diversity)]
    nov = [n for c in result.clips for n in c.novelty_n]
    lat = sorted(s * 1000 for c in result.clips for s in c.latency_s)
    lines += ["## Diversity and novelty", ""]
    if div:
        lines.append(f"- Diversity across {result.seeds} seeds (mean pairwise Jaccard distance of (instrument, "
                     f"onset, pitch) sets; 0 = identical clips): mean {statistics.mean(div):.3f}, "
                     f"min {min(div):.3f}; identical pairs: {sum(d == 0 for d in div)} prompts.")
    else:
        lines.append("- Diversity: needs at least 2 seeds.")
    if nov:
        against = (f"the top lines of all {about.training_works} training works ({about.training_lines} lines, "
                   "kept in engine/evaluation/data/reference.json.gz)" if about
                   else "the training lines in the reference file")
        lines.append("- Novelty: longest melody run (interval n-gram of each part's top line, "
                     f"transposition-invariant, rhythm ignored) shared with the training set, {against}, in notes: "
                     f"median {statistics.median(nov):g}, max {max(nov)}.")
    lines += [""] + parts_form.report_lines([e for c in result.clips for e in c.parts])
    lines += ["## Latency", ""]
    if lat:
        und = [s * 1000 for c in result.clips for s in c.understand_s]
        lines.append(f"- Per clip, in-process, text model warm: median {statistics.median(lat):.1f} ms, "
                     f"p90 {lat[min(len(lat) - 1, int(0.9 * len(lat)))]:.1f} ms, max {lat[-1]:.1f} ms; "
                     f"of which understanding the prompt: median {statistics.median(und):.1f} ms.")
    lines += [f"- First call in this process (loads the text model): {result.first_call_s:.2f} s.", "",
              "![latency](latency.png)", "", "## Per prompt", "",
              "| line | prompt | style (seed 0) | mood | checks passed (all seeds) | median ms | diversity | "
              "max novelty n |",
              "|---:|---|---|---|---:|---:|---:|---:|"]
    for c in result.clips:
        ok = sum(k.ok for k in c.checks)
        if not c.latency_s:
            lines.append(f"| {c.line} | {c.prompt} | refused | | 0/{len(c.checks)} | | | |")
            continue
        lines.append(f"| {c.line} | {c.prompt} | {c.spec['style']} | {c.spec['mood']} | {ok}/{len(c.checks)} | "
                     f"{statistics.median(c.latency_s) * 1000:.1f} | {_fmt(c.diversity, 2)} | "
                     f"{max(c.novelty_n)} |")
    return "\n".join(lines) + "\n"


def kit_names(spec: MusicSpec) -> set[str]:
    """The spec's drum-kit parts (the drum model's), not the hand percussion parts beside them."""
    return {p.name for p in spec.parts
            if (p.role == "drums" or p.is_drum) and not instruments.percussion(p.instrument)}


def drums_markdown(result: EvalResult) -> list[str]:
    """The drum section: every clip's drum track against held-out Groove performances, pooled and per style."""
    figures = [(c.spec.get("style", "?"), f) for c in result.clips for f in c.drums]
    if not figures:
        return []
    summary, classifier = drum_eval.reference()
    lines = ["## Drums against held-out Groove performances", "",
             "Each clip's drum-kit track (hand percussion parts beside it left out) read as 16th steps over the "
             "Groove 9-voice kit (engine/evaluation/drums.py). "
             "Overlap: the overlapping area of the velocity (16 bins) and onset-offset (20 bins of 1/20 step) "
             f"histograms with the Groove test split's ({summary['velocity_hits']:,} hits); target >= 0.7 each. "
             "Bars differ: share of consecutive bar pairs whose pattern differs (Groove beats: "
             f"{summary['variation_differ']:.2f}); Jaccard: their mean pattern distance (Groove "
             f"{summary['variation_jaccard']:.2f}). Fills: bars the Groove fill detector marks, at phrase ends "
             "(the last bar of each of the form's phrases) and elsewhere. Styles whose drum part is ensemble "
             "percussion (styles.toml `kit = false`) are not the kit and are left out. Genre: a softmax-regression "
             "classifier trained on "
             f"the 4/4 beat bars of Groove's validation and test splits, which the drum model never saw "
             f"({summary['classifier_train_bars']} bars; genres {', '.join(classifier.genres)}: those with at least "
             "3 held-out recordings by 2 drummers), labels each generated bar; 'real' is its leave-one-drummer-out "
             "accuracy on those real bars (each drummer's bars labelled by a classifier trained without that "
             "drummer), weighted like the generated bars; 'real, unseen' is the full classifier's accuracy on the "
             "training split's real bars, a cross-check. The target is generated >= real - 10 points. Styles whose "
             "Groove genre the classifier lacks (metal's punk, reggae: one or two held-out recordings) count in "
             "every column but the genre ones.", "",
             "| style | clips | hits | velocity overlap | offset overlap | bars differ | Jaccard "
             "| fills at phrase ends | fills elsewhere | genre: generated | genre: real | genre: real, unseen |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    styles_seen = sorted({style for style, _ in figures})
    rows = [("**all**", [f for _, f in figures])] + [(s, [f for st, f in figures if st == s]) for s in styles_seen]
    for name, group in rows:
        r = drum_eval.pool(group)
        fills_end = f"{r.phrase_end_fills[0]}/{r.phrase_end_fills[1]}" if r.phrase_end_fills[1] else "-"
        fills_other = f"{r.other_fills[0]}/{r.other_fills[1]}" if r.other_fills[1] else "-"
        if r.compared_bars:  # like for like: the genres with held-out real bars
            genre, real = f"{r.compared_accuracy:.2f} ({r.compared_bars} bars)", _fmt(r.real_accuracy, 2)
            unseen = _fmt(r.unseen_accuracy, 2)
        else:
            genre, real = (f"{r.genre_accuracy:.2f} ({r.genre_bars} bars)", "n/a") if r.genre_bars else ("-", "-")
            unseen = real
        lines.append(f"| {name} | {r.clips} | {r.hits} | {r.velocity_overlap:.2f} | {r.offset_overlap:.2f} | "
                     f"{_fmt(r.bars_differ, 2)} | {_fmt(r.jaccard, 2)} | {fills_end} | {fills_other} | {genre} | "
                     f"{real} | {unseen} |")
    lines += ["", f"Groove itself (test-split beats, phrases counted from each recording's start): fills at phrase "
              f"ends {summary['phrase_end_fill_share']:.2f}, elsewhere {summary['other_fill_share']:.2f}.", ""]
    return lines


def write_report(result: EvalResult, out: Path, prompts_file: str) -> Path:
    """Write report.md, the plots and results.json into ``out``; returns the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    _plots(result, out)
    report = out / "report.md"
    report.write_text(report_markdown(result, prompts_file), encoding="utf-8")
    data = {
        "accuracy": {k: {"passed": v[0], "checks": v[1]} for k, v in result.accuracy().items()},
        "musicality": [dict(zip(("metric", "generated_mean", "generated_sd", "reference_mean", "reference_sd",
                                 "gap"), row, strict=True)) for row in musicality_table(result)],
        "first_call_s": result.first_call_s, "seeds": result.seeds, "reference_pieces": result.reference_pieces,
        "reference": asdict(result.reference_about) if result.reference_about else None,
        "same_length_reference": result.same_length_reference,
        "reference_by_kind": result.reference_by_kind,
        "by_texture": [dict(zip(("texture", "clips", "reference_pieces", "metric", "generated_mean", "reference_mean",
                                 "reference_sd", "reference_at_clip_lengths"), row, strict=True))
                       for row in by_texture(result)]
        if result.reference_textures else [],
        "clips": [{**asdict(c), "checks": [asdict(k) for k in c.checks]} for c in result.clips],
        "parts_and_form": parts_form.summary([e for c in result.clips for e in c.parts])
        if any(c.parts for c in result.clips) else {},
    }
    (out / "results.json").write_text(json.dumps(data, indent=1, allow_nan=True), encoding="utf-8")
    return report
