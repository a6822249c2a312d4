"""Part and form figures: who wrote the notes, how parts change bar to bar, whether rhythms recur.

- bar-to-bar variation of a part: the share of consecutive bar pairs (both sounding) whose notes
  (onset step and pitch) differ. A part that plays one bar again and again reads 0.
- rhythm recurrence (motif recurrence): the share of sounding bars whose onset pattern (the
  sixteenth steps where notes start) occurs in another bar of the clip as well. Real songs repeat
  rhythms (a motif, a groove) without repeating every bar.
- the reference: the same two figures on held-out POP909 songs (the test split of
  engine/training/pop909.py, never trained on), cut into windows of a clip's length from phrase
  starts, per role (melody, bass, comp). ``python -m engine.evaluation.parts_form --build DIR``
  writes them to engine/evaluation/data/pop909_form_reference.json from a local POP909 copy; eval reads
  the JSON, so it runs without the dataset.
"""
from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path

import numpy as np

REFERENCE_FILE = "pop909_form_reference.json"
REFERENCE_LENGTHS = (4, 8, 12, 16, 32)

Bars = list[list[tuple[int, int]]]  # per bar: (onset step, pitch)


def variation(bars: Bars) -> float:
    """Share of consecutive sounding bar pairs whose notes differ (nan with fewer than two)."""
    pairs = [(a, b) for a, b in zip(bars, bars[1:], strict=False) if a and b]
    if not pairs:
        return float("nan")
    return sum(sorted(a) != sorted(b) for a, b in pairs) / len(pairs)


def recurrence(bars: Bars) -> float:
    """Share of sounding bars whose onset pattern occurs in another bar too (nan with fewer than two)."""
    patterns = [frozenset(step for step, _ in bar) for bar in bars if bar]
    if len(patterns) < 2:
        return float("nan")
    counts: dict[frozenset, int] = {}
    for p in patterns:
        counts[p] = counts.get(p, 0) + 1
    return sum(counts[p] > 1 for p in patterns) / len(patterns)


def score_bars(score, bars: int, bar_quarters: float) -> dict[str, Bars]:
    """A symusic Score's pitched tracks as bars of (sixteenth step, pitch), by track name."""
    tpq = score.ticks_per_quarter
    bar_ticks = round(bar_quarters * tpq)
    step = tpq // 4
    out = {}
    for track in score.tracks:
        if track.is_drum:
            continue
        grid: Bars = [[] for _ in range(bars)]
        for n in track.notes:
            b = n.time // bar_ticks
            if 0 <= b < bars:
                grid[b].append((round((n.time - b * bar_ticks) / step), n.pitch))
        out[track.name] = grid
    return out


def clip_figures(score, spec) -> dict[str, dict[str, float]]:
    """Per pitched part: the line it plays (melody/bass/comp: engine/compose/pipeline.py line_role),
    variation and recurrence. A string quartet's cello playing the bass voice is compared with bass lines."""
    from engine.compose.pipeline import line_role

    roles = {p.name: line_role(spec, p) or "other" for p in spec.parts}
    out = {}
    for name, bars in score_bars(score, spec.bars, spec.meter.quarters_per_bar).items():
        out[name] = {"role": roles.get(name, "other"), "variation": variation(bars),
                     "recurrence": recurrence(bars)}
    return out


def build_reference(root: Path, out: Path | None = None) -> dict:
    """The POP909 test-split figures per role and window length (module docstring)."""
    from engine.training import pop909

    songs = pop909.load(root, split="test")
    table: dict[str, dict[str, dict[str, float]]] = {}
    for length in REFERENCE_LENGTHS:
        for role in ("melody", "bass", "comp"):
            var, rec = [], []
            for song in songs:
                for _, bars in song.segments:
                    for start in range(0, len(bars) - length + 1, length):
                        window = [[(n.step, n.pitch) for n in bar.parts.get(role, [])]
                                  for bar in bars[start:start + length]]
                        if sum(1 for b in window if b) < length // 2:
                            continue  # a window where the part mostly rests (an intro without melody)
                        v, r = variation(window), recurrence(window)
                        if not np.isnan(v):
                            var.append(v)
                        if not np.isnan(r):
                            rec.append(r)
            table.setdefault(str(length), {})[role] = {
                "variation": float(np.mean(var)), "recurrence": float(np.mean(rec)),
                "recurrence_sd": float(np.std(rec)), "windows": len(rec)}
    reference = {"source": "POP909 test split (engine/training/pop909.py split_of), never trained on",
                 "songs": len(songs), "by_length": table}
    if out is not None:
        out.write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n")
    return reference


def load_reference() -> dict:
    """The committed POP909 reference figures."""
    return json.loads(resources.files("engine.evaluation.data").joinpath(REFERENCE_FILE).read_text())


def reference_for(reference: dict, bars: int, role: str) -> dict[str, float] | None:
    """The reference figures for a role at the nearest window length to ``bars``."""
    lengths = [int(k) for k in reference["by_length"]]
    nearest = min(lengths, key=lambda n: abs(n - bars))
    return reference["by_length"][str(nearest)].get(role)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", metavar="DIR", required=True, help="a local POP909 copy")
    args = parser.parse_args(argv)
    out = Path(str(resources.files("engine.evaluation.data").joinpath(REFERENCE_FILE)))
    reference = build_reference(Path(args.build), out)
    print(json.dumps(reference["by_length"]["8"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def clip_entry(score, spec, provenance) -> dict:
    """What eval keeps per clip: provenance counts and per-part figures."""
    entry: dict = {"style": spec.style, "bars": spec.bars, "parts": clip_figures(score, spec)}
    if provenance is not None:
        entry.update(learned=provenance.learned, style_rhythm=provenance.style_rhythm, rules=provenance.rules,
                     drums=provenance.drums, by_part=provenance.by_part)
    return entry


def _mean(values: list[float]) -> float:
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def summary(entries: list[dict], reference: dict | None = None) -> dict:
    """Per style and overall: learned shares, and per role variation and recurrence against POP909."""
    reference = reference or load_reference()
    groups: dict[str, list[dict]] = {}
    for e in entries:
        groups.setdefault(e["style"], []).append(e)
    groups["all"] = list(entries)
    out = {}
    for style, group in groups.items():
        counted = [e for e in group if "learned" in e]
        model = sum(e["learned"] + e["style_rhythm"] for e in counted)
        pitched = model + sum(e["rules"] for e in counted)
        total = pitched + sum(e["drums"] for e in counted)
        row: dict = {"clips": len(group), "notes": total,
                     "pitched_learned_share": model / pitched if pitched else float("nan"),
                     "fully_learned_share": sum(e["learned"] for e in counted) / pitched if pitched else float("nan"),
                     "share_drums_as_rules": model / total if total else float("nan"),
                     "share_drums_as_learned": (model + sum(e["drums"] for e in counted)) / total
                     if total else float("nan")}
        for role in ("melody", "bass", "comp"):
            figures = [(f, e["bars"]) for e in group for f in e["parts"].values() if f["role"] == role]
            if not figures:
                continue
            refs = [reference_for(reference, bars, role) for _, bars in figures]
            row[role] = {"parts": len(figures), "variation": _mean([f["variation"] for f, _ in figures]),
                         "recurrence": _mean([f["recurrence"] for f, _ in figures]),
                         "reference_variation": _mean([r["variation"] for r in refs if r]),
                         "reference_recurrence": _mean([r["recurrence"] for r in refs if r])}
        out[style] = row
    return out


def report_lines(entries: list[dict]) -> list[str]:
    """The report's "Parts and form" section (markdown lines)."""
    if not entries:
        return []
    table = summary(entries)
    lines = ["## Parts and form", "",
             "Who wrote the notes (engine/compose/learned.py Provenance): *pitched learned* is the share of pitched "
             "notes whose pitch a learned model chose (the part model or the corpus model), *fully learned* those "
             "whose onset and length it chose too (the rest keep a style's idiomatic rhythm, parts.toml); the "
             "all-notes share: every drum part is written by the drum model (engine/model/drums.py), so *drums "
             "learned* is the share of all notes a learned model wrote; *drums rules* is kept beside it to compare "
             "with clips made before the drum model. "
             "Variation: share of consecutive sounding bars that differ; recurrence: share of sounding "
             "bars whose onset pattern recurs in the clip; the reference is held-out POP909 songs (test split) "
             "cut into windows of the clips' lengths (engine/evaluation/parts_form.py).", "",
             "| style | clips | pitched learned | fully learned | all notes (drums rules) | all notes (drums learned) "
             "| melody var / rec (POP909) | bass var / rec (POP909) | comp var / rec (POP909) |",
             "|---|---:|---:|---:|---:|---:|---|---|---|"]

    def cell(row: dict, role: str) -> str:
        if role not in row:
            return ""
        r = row[role]
        return (f"{r['variation']:.2f} / {r['recurrence']:.2f} "
                f"({r['reference_variation']:.2f} / {r['reference_recurrence']:.2f})")

    for style in sorted(table, key=lambda s: (s == "all", s)):
        row = table[style]
        name = f"**{style}**" if style == "all" else style
        lines.append(f"| {name} | {row['clips']} | {row['pitched_learned_share']:.3f} | "
                     f"{row['fully_learned_share']:.3f} | {row['share_drums_as_rules']:.3f} | "
                     f"{row['share_drums_as_learned']:.3f} | {cell(row, 'melody')} | {cell(row, 'bass')} | "
                     f"{cell(row, 'comp')} |")
    return lines + [""]
