"""`cadenza batch`: many clips from a JSONL prompts file, one folder per line, resumable.

Each line is a JSON object: ``prompt`` (required) and optionally ``id`` (names the folder;
default the line number), ``tempo`` (or ``tempo_bpm``), ``key``, ``meter``, ``bars``, ``seed``;
``expect`` (what `cadenza eval` checks) is allowed and ignored. A bad line fails on its own,
with a message naming the line and the field; the other lines go on.

A folder is done when it is whole: clip.mid parses as MIDI, spec.json as JSON, and mix.wav and
every part's stem in spec.json read back in full with the same number of frames. A second run
skips whole folders and makes the rest again (write_clip replaces an unfinished folder). The
summary (DIR/summary.json) has every line's status (done, skipped, failed, interrupted), its
error, and its timings: seconds making it, and seconds waiting for a free slot first.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bridge.atomic import write_bytes
from bridge.paths import safe_name

SUMMARY_FILE = "summary.json"
IGNORED_FIELDS = ("expect",)
INT_FIELDS = ("bars", "seed")
TEXT_FIELDS = ("key", "meter")
ACCEPTED_FIELDS = ("prompt", "id", "tempo", "tempo_bpm", *TEXT_FIELDS, *INT_FIELDS, *IGNORED_FIELDS)


@dataclass(frozen=True)
class BatchItem:
    """One line of the prompts file: what to make and where, or why it cannot be made."""

    line: int
    name: str
    prompt: str = ""
    overrides: dict = field(default_factory=dict)
    error: str | None = None

    def request_id(self, folder: Path) -> str:
        """The same id on every run of the batch for this folder and line: with ``--session``, a
        clip remade after an interruption is the take its first attempt recorded, not a second one."""
        what = json.dumps([str(folder.resolve()), self.prompt, self.overrides], sort_keys=True)
        return uuid.uuid5(uuid.NAMESPACE_URL, what).hex


@dataclass
class ClipOutcome:
    """What became of one line."""

    line: int
    name: str
    status: str  # done, skipped, failed, interrupted
    error: str | None = None
    seconds: float = 0.0
    queue_wait_seconds: float = 0.0
    generate_seconds: float = 0.0
    render_seconds: float = 0.0
    write_seconds: float = 0.0
    seed: int | None = None


def _parse_line(number: int, text: str, bars: int | None) -> BatchItem:
    """A BatchItem for one line (its ``error`` set when the line is bad)."""
    default_name = f"{number:04d}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return BatchItem(number, default_name, error=f"line {number}: not JSON ({error.msg} at column {error.colno})")
    if not isinstance(data, dict):
        return BatchItem(number, default_name, error=f"line {number}: must be a JSON object with a \"prompt\"")
    name = default_name
    if "id" in data:
        if not isinstance(data["id"], str | int) or isinstance(data["id"], bool) or not str(data["id"]).strip():
            return BatchItem(number, name, error=f"line {number}: field 'id' must be a non-empty string or integer")
        name = safe_name(str(data["id"]).strip())
    unknown = sorted(set(data) - set(ACCEPTED_FIELDS))
    if unknown:
        return BatchItem(number, name, error=f"line {number}: unknown field {unknown[0]!r} "
                                             f"(accepted: {', '.join(ACCEPTED_FIELDS)})")
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return BatchItem(number, name, error=f"line {number}: field 'prompt' must be a non-empty string")
    overrides: dict = {}
    tempo_key = "tempo_bpm" if "tempo_bpm" in data else "tempo"
    if tempo_key in data:
        value = data[tempo_key]
        if not isinstance(value, int | float) or isinstance(value, bool):
            return BatchItem(number, name, error=f"line {number}: field {tempo_key!r} must be a number "
                                                 f"(BPM), got {value!r}")
        overrides["tempo_bpm"] = float(value)
    for key in TEXT_FIELDS:
        if key in data:
            if not isinstance(data[key], str):
                return BatchItem(number, name, error=f"line {number}: field {key!r} must be a string, "
                                                     f"got {data[key]!r}")
            overrides[key] = data[key]
    for key in INT_FIELDS:
        if key in data:
            if not isinstance(data[key], int) or isinstance(data[key], bool):
                return BatchItem(number, name, error=f"line {number}: field {key!r} must be an integer, "
                                                     f"got {data[key]!r}")
            overrides[key] = data[key]
    if bars is not None:
        overrides["bars"] = bars
    return BatchItem(number, name, prompt=prompt, overrides=overrides)


def read_prompts(path: Path, bars: int | None = None) -> list[BatchItem]:
    """Every non-blank line of a JSONL prompts file as a BatchItem; ``bars`` overrides each line's length.

    Two lines naming the same folder: the later one fails.
    """
    items: list[BatchItem] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        item = _parse_line(number, text, bars)
        if item.error is None and item.name in seen:
            item = BatchItem(number, item.name, error=f"line {number}: field 'id' names folder {item.name!r}, "
                                                      f"already used by line {seen[item.name]}")
        seen.setdefault(item.name, number)
        items.append(item)
    return items


def _audio_frames(path: Path) -> int:
    """Frames of an audio file, read in full (a truncated file raises)."""
    import soundfile

    info = soundfile.info(str(path))
    data, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    if len(data) != info.frames or info.frames == 0:
        raise ValueError(f"{path.name} holds {len(data)} of {info.frames} frames")
    return info.frames


def unwhole_reason(folder: Path) -> str | None:
    """None if ``folder`` holds a whole clip; otherwise what is missing or broken."""
    import mido

    from bridge.clip_files import stem_file

    midi = folder / "clip.mid"
    if not midi.exists():
        return "unfinished (no clip.mid)"
    try:
        mido.MidiFile(str(midi))
        spec = json.loads((folder / "spec.json").read_text(encoding="utf-8"))
        frames = _audio_frames(folder / "mix.wav")
        for part in spec["parts"]:
            stem = stem_file(folder, part["name"])
            if _audio_frames(stem) != frames:
                return f"stems/{stem.name} and mix.wav differ in length"
    except Exception as error:  # noqa: BLE001 - any failure to read back means: make it again
        return f"{type(error).__name__}: {error}"
    return None


def make_clip(client, item: BatchItem, folder: Path, sample_rate: int, session: str,
              outcome: ClipOutcome) -> None:
    """Generate, render and write one clip folder, as `cadenza generate` does; timings go to ``outcome``."""
    from bridge.clip_folder import write_take_folder
    from protos.cadenza.v1 import engine_pb2 as pb

    began = time.monotonic()
    result = client.generate(item.prompt, pb.Overrides(**item.overrides), session=session,
                             request_id=item.request_id(folder))
    generated = time.monotonic()
    # What is there is not whole (checked before): replace it.
    clip = write_take_folder(client, folder, result, sample_rate=sample_rate, overwrite=True)
    outcome.generate_seconds = round(generated - began, 3)
    outcome.render_seconds = round(clip.render_seconds, 3)
    outcome.write_seconds = round(clip.write_seconds, 3)
    outcome.seed = int(result.spec.seed)


@dataclass
class BatchSummary:
    """The whole run: every line's outcome and the totals."""

    prompts: str
    out: str
    engine: str
    concurrency: int
    outcomes: list[ClipOutcome]
    wall_seconds: float = 0.0
    interrupted: bool = False

    def totals(self) -> dict:
        counts = {status: sum(o.status == status for o in self.outcomes)
                  for status in ("done", "skipped", "failed", "interrupted")}
        made = [o.seconds for o in self.outcomes if o.status == "done"]
        return {"lines": len(self.outcomes), **counts, "wall_seconds": round(self.wall_seconds, 3),
                "clips_per_second": round(counts["done"] / self.wall_seconds, 4) if self.wall_seconds else 0.0,
                "mean_seconds_per_clip": round(sum(made) / len(made), 3) if made else 0.0}

    def to_json(self) -> dict:
        return {"prompts": self.prompts, "out": self.out, "engine": self.engine, "concurrency": self.concurrency,
                "interrupted": self.interrupted, "totals": self.totals(),
                "clips": [asdict(o) for o in self.outcomes]}


def write_summary(out: Path, summary: BatchSummary) -> Path:
    path = out / SUMMARY_FILE
    write_bytes(path, (json.dumps(summary.to_json(), indent=2) + "\n").encode(), overwrite=True)
    return path


def run_batch(client, items: list[BatchItem], out: Path, concurrency: int = 1, sample_rate: int = 0,
              session: str = "", prompts: str = "", engine: str = "",
              on_done: Callable[[ClipOutcome], None] | None = None) -> BatchSummary:
    """Make every item's clip under ``out`` with ``concurrency`` requests at once over one client.

    Whole folders are skipped; bad lines and failed requests are recorded and the rest go on.
    On KeyboardInterrupt, lines not yet started are marked interrupted, running ones finish,
    the summary is written, and the interrupt is raised again.
    """
    from bridge.client import EngineUnavailable, RequestRejected

    out.mkdir(parents=True, exist_ok=True)
    outcomes = [ClipOutcome(item.line, item.name, "interrupted") for item in items]
    summary = BatchSummary(prompts, str(out), engine, concurrency, outcomes)
    lock = threading.Lock()
    started = time.monotonic()

    def one(index: int, submitted: float) -> ClipOutcome:
        item, outcome = items[index], outcomes[index]
        began = time.monotonic()
        outcome.queue_wait_seconds = round(began - submitted, 3)
        folder = out / item.name
        if item.error:
            outcome.status, outcome.error = "failed", item.error
        elif unwhole_reason(folder) is None:
            outcome.status = "skipped"
        else:
            try:
                make_clip(client, item, folder, sample_rate, session, outcome)
                outcome.status = "done"
            except (RequestRejected, EngineUnavailable, OSError, ValueError) as error:
                outcome.status, outcome.error = "failed", f"line {item.line}: {error}"
        outcome.seconds = round(time.monotonic() - began, 3)
        if on_done:
            with lock:
                on_done(outcome)
        return outcome

    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="batch")
    futures: list[Future] = [executor.submit(one, i, time.monotonic()) for i in range(len(items))]
    try:
        for future in futures:
            future.result()
    except KeyboardInterrupt:
        summary.interrupted = True
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        executor.shutdown(wait=True)
        summary.wall_seconds = time.monotonic() - started
        write_summary(out, summary)
    return summary
