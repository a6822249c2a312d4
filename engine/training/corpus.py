"""The training corpus: the music21 corpus, parsed once and cached as MIDI.

music21 ships real music (Bach chorales, Essen folk songs, O'Neill's and Ryan's fiddle tunes,
Palestrina, Monteverdi, the Trecento, a few classical works; most of its Haydn, Mozart and Beethoven
movements change meter and are skipped) inside its wheel, so the generator trains on data that
installs offline. Parsing is slow (tens of milliseconds per tune), so `prepare` does it once,
converts each work straight to a symusic Score (music21's own MIDI writer is slower and drops
the part structure we need), and caches the MIDI files with an index of their meter, declared
key and collection. Which files are used is data: engine/catalog/data/model.toml.
"""
from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.catalog.model_data import model_data
from engine.config import TICKS_PER_QUARTER

INDEX_NAME = "index.jsonl"
CORPUS_VERSION = 2  # bump when the conversion or the works taken change, so old caches are not mixed in
ACCEPTED_DENOMINATORS = (2, 4, 8, 16)


@dataclass(frozen=True)
class Collection:
    """One corpus collection from model.toml."""

    name: str
    style: str
    files: tuple[str, ...]
    max_works: int | None  # None: every work


@dataclass(frozen=True)
class Work:
    """One cached work: its MIDI file (relative to the cache) and what is known about it."""

    file: str
    collection: str
    style: str
    work: str          # a stable id; train/validation are split by it
    title: str
    meter: tuple[int, int]
    key: tuple[str, str] | None  # (tonic, mode) when the source declares it
    tempo: float | None
    parts: int


def collections() -> list[Collection]:
    """The corpus collections the generator is trained on (engine/catalog/data/model.toml)."""
    return [Collection(c["name"], c["style"], tuple(c["files"]), c.get("max_works"))
            for c in model_data()["corpus"]]


def default_cache_dir() -> Path:
    """Where the parsed corpus is cached (per user, outside the repository)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("cadenza")) / f"corpus-v{CORPUS_VERSION}"


def _corpus_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def _files(collection: Collection) -> list[Path]:
    root = _corpus_root()
    found: list[Path] = []
    for pattern in collection.files:
        found.extend(sorted(Path(p) for p in glob.glob(str(root / pattern))))
    return found


def _to_score(m21_score, shift_pickup: bool = True):
    """A symusic Score from a parsed music21 score; None if it has no usable single meter."""
    from music21 import key as m21key
    from music21 import meter as m21meter
    from music21 import tempo as m21tempo
    from symusic import Note, Score, Tempo, TimeSignature, Track

    found = m21_score.recurse().getElementsByClass(m21meter.TimeSignature)
    signatures = {(ts.numerator, ts.denominator) for ts in found}
    if len(signatures) != 1:
        return None
    numerator, denominator = signatures.pop()
    if denominator not in ACCEPTED_DENOMINATORS:
        return None
    bar_ql = numerator * 4.0 / denominator
    declared = None
    for k in m21_score.recurse().getElementsByClass(m21key.Key):
        declared = (k.tonic.name.replace("-", "b"), k.mode)
        break
    tempo = None
    for mark in m21_score.recurse().getElementsByClass(m21tempo.MetronomeMark):
        if mark.number:
            tempo = float(mark.getQuarterBPM() or mark.number)
        break

    parts = list(m21_score.parts) or [m21_score]
    shift = 0.0
    if shift_pickup:
        measures = list(parts[0].getElementsByClass("Measure"))
        if measures:
            first = float(measures[0].duration.quarterLength)
            if 0 < first < bar_ql - 1e-6:
                shift = bar_ql - first  # an anacrusis: move everything so bar lines fall on bars
    score = Score(TICKS_PER_QUARTER)
    score.time_signatures.append(TimeSignature(0, numerator, denominator))
    if tempo:
        score.tempos.append(Tempo(0, qpm=tempo))
    for index, part in enumerate(parts):
        track = Track(name=str(part.partName or f"part {index + 1}"), program=0)
        flat = part.stripTies().flatten()
        for element in flat.notes:
            length = float(element.duration.quarterLength)
            if length <= 0:
                continue  # grace notes
            start = round((float(element.offset) + shift) * TICKS_PER_QUARTER)
            duration = max(1, round(length * TICKS_PER_QUARTER))
            for pitch in element.pitches:
                track.notes.append(Note(start, duration, int(pitch.midi), 80))
        if track.notes:
            score.tracks.append(track)
    if not score.tracks:
        return None
    return score, (numerator, denominator), declared, tempo


def _convert_file(job: tuple[str, str, str, str, int]) -> list[dict]:
    """Parse one corpus file (one work, or an ABC opus of many) and write each work's MIDI."""
    path, collection, style, out_dir, limit = job
    from music21 import converter

    os.nice(0)
    results: list[dict] = []
    try:
        parsed = converter.parse(path)
    except Exception:  # a file music21 cannot read is skipped and counted
        return results
    scores = list(parsed.scores) if hasattr(parsed, "scores") else [parsed]
    stem = Path(path).stem
    for number, m21_score in enumerate(scores[:limit]):
        try:
            converted = _to_score(m21_score)
        except Exception:
            converted = None
        if converted is None:
            continue
        score, meter, declared, tempo = converted
        title = str(getattr(m21_score.metadata, "title", "") or "") if m21_score.metadata else ""
        name = f"{collection}/{stem}-{number:04d}.mid"
        target = Path(out_dir) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        score.dump_midi(str(target))
        results.append(asdict(Work(file=name, collection=collection, style=style, work=f"{collection}:{stem}:{number}",
                                   title=title, meter=meter, key=declared, tempo=tempo, parts=len(score.tracks))))
    return results


def prepare(out_dir: Path | None = None, workers: int = 2,
            progress: Callable[[int, int], None] | None = None) -> Path:
    """Parse the corpus into ``out_dir`` (MIDI + index.jsonl); return the directory.

    An existing complete cache is reused. ``progress(done, total)`` is called per file.
    """
    from multiprocessing import get_context

    out = Path(out_dir or default_cache_dir())
    if (out / INDEX_NAME).exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for collection in collections():
        for path in _files(collection):
            jobs.append((str(path), collection.name, collection.style, str(out), collection.max_works))
    records: list[dict] = []
    with get_context("spawn").Pool(workers) as pool:
        for done, result in enumerate(pool.imap(_convert_file, jobs), 1):
            records.extend(result)
            if progress:
                progress(done, len(jobs))
    per_collection: dict[str, int] = {}
    kept = []
    for record in records:
        cap = next(c.max_works for c in collections() if c.name == record["collection"])
        if cap is None or per_collection.get(record["collection"], 0) < cap:
            per_collection[record["collection"]] = per_collection.get(record["collection"], 0) + 1
            kept.append(record)
    tmp = out / (INDEX_NAME + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    tmp.replace(out / INDEX_NAME)
    return out


def read_index(directory: Path) -> list[Work]:
    """The works of a prepared corpus directory."""
    works = []
    for line in (Path(directory) / INDEX_NAME).read_text().splitlines():
        raw = json.loads(line)
        raw["meter"] = tuple(raw["meter"])
        raw["key"] = tuple(raw["key"]) if raw["key"] else None
        works.append(Work(**raw))
    return works


def iter_scores(directory: Path) -> Iterator[tuple[Work, object]]:
    """(Work, symusic Score) for each cached work."""
    from symusic import Score

    for work in read_index(directory):
        yield work, Score(str(Path(directory) / work.file))


def main() -> None:
    """`python -m engine.training.corpus [DIR]`: prepare the cache with a progress bar."""
    import sys

    from tqdm import tqdm

    bar = tqdm(unit="file", desc="parsing corpus")

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    out = prepare(Path(sys.argv[1]) if len(sys.argv) > 1 else None, progress=update)
    bar.close()
    works = read_index(out)
    print(f"{len(works)} works in {out}")


if __name__ == "__main__":
    main()
