"""Benchmark: what the dev prompts sound like, measured: stereo width, mono sum, spectrum, crescendo.

Run from the repository root: `nice python -m tests.benchmarks.bench_sound [--out DIR] [--gm]`.
For every prompt of ../shared/eval/dev_prompts.jsonl (8 bars, seed 1) it composes the clip, renders
it in process and prints one line per clip: the mix's stereo width (side/mid energy), the mono fold
((L+R)/2 on both channels) against the stereo loudness (BS.1770, LU), the mix's spectral centroid
and 99% roll-off, loudness per quarter of the clip (first and last quarter, mix and stems), the
mix's energy per band (<60 Hz / 60-250 / 250-2k / 2k-6k / >6k, %), and per part the source that
played it with its stem's centroid, width and share of the mix's mid energy (m). ``--gm`` renders
every part with the General MIDI bank instead (the "before" sound, for comparison); ``--vs-gm``
renders each clip both ways and prints, per part, its stem's centroid against the General MIDI bank's
for the same notes (issue 17: a synth-genre stem should be at least twice as bright); ``--out`` writes
the mixes as WAV.
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


BANDS = ((0, 60), (60, 250), (250, 2000), (2000, 6000), (6000, RATE / 2))


def band_shares(audio: np.ndarray) -> list[float]:
    """Share (%) of the mono sum's energy in each of BANDS (sub, bass, mids, presence, air)."""
    mono = audio.mean(axis=1).astype(np.float64)
    power = np.abs(np.fft.rfft(mono)) ** 2
    freqs = np.fft.rfftfreq(len(mono), 1 / RATE)
    total = max(float(power.sum()), 1e-30)
    return [100 * float(power[(freqs >= low) & (freqs < high)].sum()) / total for low, high in BANDS]


def quarters_rms_db(audio: np.ndarray) -> tuple[float, float]:
    """Loudness (LUFS, BS.1770 on that stretch) of the first and last quarter of a clip."""
    n = audio.shape[0] // 4
    return loudness(audio[:n]), loudness(audio[-n:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--gm", action="store_true", help="every part on the General MIDI bank")
    parser.add_argument("--vs-gm", action="store_true",
                        help="also render every part on the General MIDI bank and print each stem's centroid ratio")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--only", help="prompts containing this text (several: separated by |)")
    parser.add_argument("--prompts", type=Path, default=PROMPTS, help="a JSONL file of prompts (default: %(default)s)")
    args = parser.parse_args()
    from engine.compose.pipeline import compose
    from engine.understand.prompt import Overrides, understand
    from plugin_host.render import RenderOptions, render_in_process

    results = []
    for index, line in enumerate(args.prompts.read_text().splitlines()):
        prompt = json.loads(line)["prompt"]
        if args.only and not any(word.lower() in prompt.lower() for word in args.only.split("|")):
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
        bands = band_shares(stems.mix)
        mid_energy = max(float(np.sum(stems.mix.astype(np.float64).mean(axis=1) ** 2)), 1e-30)
        row = {"prompt": prompt, "style": spec.style, "arc": spec.arc, "width": width(stems.mix), "bands": bands,
               "mono_lu": mono_fold_lu(stems.mix), "centroid": c, "rolloff99": r, "first_q": first, "last_q": last,
               "parts": {}}
        for name, audio in stems.parts.items():
            pc, pr = centroid_rolloff(audio)
            pf, pl = quarters_rms_db(audio)
            source = (getattr(stems, "sources", None) or {}).get(name, "gm")
            row["parts"][name] = {"role": roles.get(name), "source": source.rsplit("/", 1)[-1],
                                  "width": width(audio), "centroid": pc, "rolloff99": pr, "rise": pl - pf,
                                  "mid_share": float(np.sum(audio.astype(np.float64).mean(axis=1) ** 2)) / mid_energy}
        results.append(row)
        parts = ", ".join(f"{n}[{p['source']}] c={p['centroid']:.0f} w={p['width']:.2f} m={p['mid_share']:.2f}"
                          for n, p in row["parts"].items())
        print(f"{index:2d} {spec.style:13s} width {row['width']:.2f} mono {row['mono_lu']:+.1f} LU "
              f"centroid {c:5.0f} Hz r99 {r:5.0f} Hz q1->q4 {last - first:+.1f} LU bands% "
              f"{'/'.join(f'{b:.0f}' for b in bands)} | {parts}", flush=True)
        if args.vs_gm:
            gm_options = RenderOptions(style=spec.style, roles=roles, bars=spec.bars,
                                       **{**extra, "sounds": {p.name: "gm" for p in spec.parts}})
            gm_stems = render_in_process(score, RATE, gm_options)
            for name, part in row["parts"].items():
                part["gm_centroid"] = centroid_rolloff(gm_stems.parts[name])[0]
            print("   vs GM, same notes: " + ", ".join(
                f"{n}[{p['source']}] {p['centroid']:.0f}/{p['gm_centroid']:.0f} Hz = "
                f"{p['centroid'] / max(p['gm_centroid'], 1e-9):.2f}x" for n, p in row["parts"].items()), flush=True)
        if args.out:
            import soundfile

            args.out.mkdir(parents=True, exist_ok=True)
            soundfile.write(args.out / f"{index:02d}-{spec.style.replace(' ', '_')}.wav", stems.mix, RATE,
                            subtype="PCM_16")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
