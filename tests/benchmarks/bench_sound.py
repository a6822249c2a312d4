"""Benchmark: what the dev prompts sound like, measured: stereo width, mono sum, spectrum, crescendo.

Run from the repository root: `nice python -m tests.benchmarks.bench_sound [--out DIR] [--gm]`.
For every prompt of ../shared/eval/dev_prompts.jsonl (8 bars, seed 1) it composes the clip, renders
it in process and prints one line per clip: the mix's stereo width (side/mid energy), the mono fold
((L+R)/2 on both channels) against the stereo loudness (BS.1770, LU), the mix's spectral centroid
and 99% roll-off, loudness per quarter of the clip (first and last quarter, mix and stems), and per
part the source that played it with its stem's centroid. ``--gm`` renders every part with the
General MIDI bank instead (the "before" sound, for comparison); ``--out`` writes the mixes as WAV.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PROMPTS = ROOT.parent / "shared" / "eval" / "dev_prompts.jsonl"
RATE = 48000


def width(audio: np.ndarray) -> float:
    """Side over mid energy: 0 for mono, 1 for uncorrelated channels of equal level."""
    mid = (audio[:, 0] + audio[:, 1]) / 2
    side = (audio[:, 0] - audio[:, 1]) / 2
    return float(np.sum(side.astype(np.float64) ** 2) / max(np.sum(mid.astype(np.float64) ** 2), 1e-20))


def loudness(audio: np.ndarray) -> float:
    import pyloudnorm

    if audio.shape[0] < int(0.4 * RATE) + 1:
        return float("-inf")
    return float(pyloudnorm.Meter(RATE).integrated_loudness(audio.astype(np.float64)))


def mono_fold_lu(audio: np.ndarray) -> float:
    """Loudness of the mono fold ((L+R)/2 on both channels) minus the stereo loudness, in LU."""
    mono = audio.mean(axis=1, keepdims=True).repeat(2, axis=1)
    return loudness(mono) - loudness(audio)


def centroid_rolloff(audio: np.ndarray) -> tuple[float, float]:
    """Spectral centroid and 99% energy roll-off (Hz) of the mono sum."""
    mono = audio.mean(axis=1).astype(np.float64)
    power = np.abs(np.fft.rfft(mono)) ** 2
    freqs = np.fft.rfftfreq(len(mono), 1 / RATE)
    total = power.sum()
    if total <= 0:
        return 0.0, 0.0
    cumulative = np.cumsum(power) / total
    return float((freqs * power).sum() / total), float(freqs[np.searchsorted(cumulative, 0.99)])


def quarters_rms_db(audio: np.ndarray) -> tuple[float, float]:
    """Loudness (LUFS, BS.1770 on that stretch) of the first and last quarter of a clip."""
    n = audio.shape[0] // 4
    return loudness(audio[:n]), loudness(audio[-n:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--gm", action="store_true", help="every part on the General MIDI bank")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--only", help="prompts containing this text")
    parser.add_argument("--prompts", type=Path, default=PROMPTS, help="a JSONL file of prompts (default: %(default)s)")
    args = parser.parse_args()
    from engine.compose.pipeline import compose
    from engine.understand.prompt import Overrides, understand
    from plugin_host.render import RenderOptions, render_in_process

    results = []
    for index, line in enumerate(args.prompts.read_text().splitlines()):
        prompt = json.loads(line)["prompt"]
        if args.only and args.only.lower() not in prompt.lower():
            continue
        spec = understand(prompt, Overrides(bars=8, seed=1))
        score = compose(spec)
        roles = {p.name: p.role for p in spec.parts}
        extra = {}
        if args.gm and "sounds" in RenderOptions.__dataclass_fields__:
            extra["sounds"] = {p.name: "gm" for p in spec.parts}
        if "prompt" in RenderOptions.__dataclass_fields__:
            extra["prompt"] = prompt
        options = RenderOptions(style=spec.style, roles=roles, bars=spec.bars, **extra)
        stems = render_in_process(score, RATE, options)
        first, last = quarters_rms_db(stems.mix)
        c, r = centroid_rolloff(stems.mix)
        row = {"prompt": prompt, "style": spec.style, "arc": spec.arc, "width": width(stems.mix),
               "mono_lu": mono_fold_lu(stems.mix), "centroid": c, "rolloff99": r, "first_q": first, "last_q": last,
               "parts": {}}
        for name, audio in stems.parts.items():
            pc, pr = centroid_rolloff(audio)
            pf, pl = quarters_rms_db(audio)
            source = (getattr(stems, "sources", None) or {}).get(name, "gm")
            row["parts"][name] = {"role": roles.get(name), "source": source.rsplit("/", 1)[-1],
                                  "width": width(audio), "centroid": pc, "rolloff99": pr, "rise": pl - pf}
        results.append(row)
        parts = ", ".join(f"{n}[{p['source']}] c={p['centroid']:.0f} w={p['width']:.2f}"
                          for n, p in row["parts"].items())
        print(f"{index:2d} {spec.style:13s} width {row['width']:.2f} mono {row['mono_lu']:+.1f} LU "
              f"centroid {c:5.0f} Hz r99 {r:5.0f} Hz q1->q4 {last - first:+.1f} LU | {parts}", flush=True)
        if args.out:
            import soundfile

            args.out.mkdir(parents=True, exist_ok=True)
            soundfile.write(args.out / f"{index:02d}-{spec.style.replace(' ', '_')}.wav", stems.mix, RATE,
                            subtype="PCM_16")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
