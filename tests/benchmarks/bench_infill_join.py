"""How infill joins the bars after its region: the model's join score of the draft it keeps vs the others.

Infill drafts the region left to right (the model continues the bars before it) and keeps the draft
after which the model finds the part's next bars most likely (engine.compose.operations.join_logprobs): the
right side is heard by re-ranking, not by decoding with it as context. For takes of several prompts
and seeds, infilling bars 3-4 of the melody, this prints per draft count:

- the join score (mean log-probability per token of the two bars after the region) of the kept
  draft, of a draft picked at random (the mean over drafts), and of the music that was there;
- how often the older rule (the draft whose last pitch is nearest the next note) picks the same one;
- the time of an infill (in process, model warm).

    nice python -m tests.benchmarks.bench_infill_join [--takes 12] [--drafts 2 4]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from engine.compose import operations as ops
from engine.compose.pipeline import compose
from engine.understand.prompt import understand

PROMPTS = ["a pop tune with flute melody, bass and drums", "a folk song with violin melody and guitar in D major",
           "a slow waltz with clarinet melody and piano in A minor"]
FIRST, LAST = 3, 4


def melody_part(spec):
    """The part playing the model's top voice (the melody)."""
    from engine.compose.pipeline import plan_voices

    slots = plan_voices(spec.parts).slots_of
    return next(spec.parts[i] for i, voices in slots.items() if 0 in voices)


def drafts_and_joins(spec, score, part, seed: int, n: int):
    """Every draft the infill would make with ``n`` candidates, and each one's join score."""
    ticks = ops.bar_ticks(spec)
    start, end = (FIRST - 1) * ticks, LAST * ticks
    track = next(t for t in score.tracks if t.name == part.name)
    before = [n for n in track.notes if n.time < start]
    after = [n for n in track.notes if n.time >= end]
    inside = [n for n in track.notes if start <= n.time < end]
    drafts = ops.infill_drafts(spec, part, before, FIRST, LAST, seed, n)
    joins = [ops.join_logprobs(spec, before, [d], after, FIRST, LAST)[0] for d in drafts]
    original = ops.join_logprobs(spec, before, [inside], after, FIRST, LAST)[0]
    target = after[0].pitch if after else None
    nearest = min(range(len(drafts)), key=lambda i: abs(max(drafts[i], key=lambda x: x.time).pitch - target))
    return joins, original, nearest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--takes", type=int, default=12)
    parser.add_argument("--drafts", type=int, nargs="+", default=[2, 4])
    args = parser.parse_args()
    takes = []
    for i in range(args.takes):
        spec = understand(PROMPTS[i % len(PROMPTS)])
        spec = replace(spec, bars=8, seed=100 + i)
        takes.append((spec, compose(spec)))
    print(f"{args.takes} takes of 8 bars ({len(PROMPTS)} prompts), infill of the melody's bars {FIRST}-{LAST}; "
          "join = mean log-prob per token of the 2 bars after the region")
    print(f"{'drafts':>6} {'kept':>8} {'random':>8} {'original':>9} {'same as nearest-pitch':>22} {'infill time':>12}")
    for n in args.drafts:
        kept, random_, original, same, times = [], [], [], 0, []
        for i, (spec, score) in enumerate(takes):
            part = melody_part(spec)
            joins, there, nearest = drafts_and_joins(spec, score, part, 7 + i, n)
            if not joins or any(j is None for j in joins):
                continue
            best = int(np.argmax(joins))
            kept.append(joins[best])
            random_.append(float(np.mean(joins)))
            original.append(there)
            same += best == nearest
            ops.INFILL_CANDIDATES, saved = n, ops.INFILL_CANDIDATES
            began = time.perf_counter()
            ops.infill(spec, score, part.name, FIRST, LAST, 7 + i)
            times.append(time.perf_counter() - began)
            ops.INFILL_CANDIDATES = saved
        print(f"{n:>6} {np.mean(kept):8.3f} {np.mean(random_):8.3f} {np.mean(original):9.3f} "
              f"{same:>11}/{len(kept):<10} {np.median(times):10.3f} s")


if __name__ == "__main__":
    main()
