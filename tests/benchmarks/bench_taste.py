"""A simulated composer against the taste model: acceptance over 40 rounds, ranking on vs off.

The composer's preference is defined here and hidden from the engine: it likes sparse,
syncopated takes with a wide loudness range (a weighted sum of standardised features plus
noise) and keeps a take when that utility is above a threshold; when it rejects a busy take it
says "too busy". Each round the engine offers 4 candidates drawn from a pool of real takes
(composed by engine/compose/pipeline.py and varied by engine/compose/operations.py); with ranking on it offers
the one engine/sessions/taste.py ranks first after refitting on every verdict so far, with ranking off
a random one. Goal (issue 8): after 20 verdicts, ranking on accepts at least 1.5x as often.

    nice python -m tests.benchmarks.bench_taste [--trials 40] [--rounds 40]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from engine.sessions import taste as taste_model

PROMPTS = ("a pop tune with flute melody, bass and drums", "a busy funk groove with piano, bass and drums",
           "a calm ambient pad with a slow flute melody", "a fast rock song with guitar, bass and drums",
           "a jazz trio with piano, double bass and drums", "a sparse folk song on acoustic guitar and flute")
HIDDEN = {"density": -1.0, "syncopation": 0.8, "velocity_range": 0.5}  # the composer's taste (not the engine's)
NOISE = 0.3
ACCEPT_QUANTILE = 0.6  # a random take is kept about 40% of the time


def pool(seeds: int = 3, variations: int = 5) -> list[dict]:
    """Feature dicts of real takes: prompts x seeds composed, each varied at several amounts."""
    from engine.compose.operations import vary
    from engine.compose.pipeline import compose
    from engine.understand.prompt import Overrides, understand

    takes = []
    for prompt in PROMPTS:
        for seed in range(seeds):
            spec = understand(prompt, Overrides(bars=8, seed=seed))
            score = compose(spec)
            takes.append(_features(score, spec))
            for k in range(variations):
                varied = vary(spec, score, [p.name for p in spec.parts], float(k + 1) / variations, 100 + k)
                takes.append(_features(varied, spec))
    return takes


def _features(score, spec) -> dict:
    """What the engine records for a take: the score's features and the model's likelihood."""
    feats = taste_model.features(score)
    likelihood = taste_model.model_likelihood(score, spec)
    if likelihood is not None:
        feats["likelihood"] = likelihood
    return feats


def utility(features: dict) -> float:
    x = taste_model.vector(features)
    return float(sum(w * x[taste_model.FEATURES.index(name)] for name, w in HIDDEN.items()))


def run(takes: list[dict], rounds: int, trials: int, ranking: bool, use_reasons: bool) -> tuple[np.ndarray, float]:
    """Acceptance per round averaged over trials; mean milliseconds per refit."""
    utilities = np.array([utility(f) for f in takes])
    threshold = float(np.quantile(utilities, ACCEPT_QUANTILE))
    busy = float(np.median([f["density"] for f in takes]))
    accepted = np.zeros(rounds)
    fit_seconds, fits = 0.0, 0
    for trial in range(trials):
        rng = np.random.default_rng(trial)
        verdicts: list[dict] = []
        for r in range(rounds):
            offered = rng.choice(len(takes), size=taste_model.DEFAULT_CANDIDATES, replace=False)
            if ranking:
                start = time.perf_counter()
                model = taste_model.fit(verdicts, use_reasons=use_reasons)
                fit_seconds += time.perf_counter() - start
                fits += 1
                choice = offered[model.rank([takes[i] for i in offered])[0]]
            else:
                choice = offered[0]  # the draw is random: the first is a random candidate
            keep = utilities[choice] + rng.normal(0, NOISE) > threshold
            reason = "" if keep or takes[choice]["density"] <= busy else "too busy"
            verdicts.append({"take": f"{trial}-{r}", "verdict": "keep" if keep else "reject", "reason": reason,
                             "rating": 0, "created": r, "features": takes[choice]})
            accepted[r] += keep
    return accepted / trials, 1000 * fit_seconds / max(1, fits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    start = time.perf_counter()
    takes = pool()
    print(f"pool: {len(takes)} real takes in {time.perf_counter() - start:.1f} s; hidden preference {HIDDEN}")
    off, _ = run(takes, args.rounds, args.trials, ranking=False, use_reasons=False)
    on, fit_ms = run(takes, args.rounds, args.trials, ranking=True, use_reasons=True)
    on_plain, _ = run(takes, args.rounds, args.trials, ranking=True, use_reasons=False)
    print(f"acceptance per round (mean of {args.trials} composers), 4 candidates per request")
    print("round  off    on    on-without-reasons")
    for r in range(args.rounds):
        print(f"{r + 1:>5}  {off[r]:.2f}  {on[r]:.2f}  {on_plain[r]:.2f}  {'#' * round(on[r] * 20)}")
    late = slice(20, args.rounds)
    ratio = on[late].mean() / max(1e-9, off[late].mean())
    print(f"rounds 21-{args.rounds}: ranking off {off[late].mean():.2f}, on {on[late].mean():.2f} "
          f"(x{ratio:.2f}; goal >= 1.5), on without reasons {on_plain[late].mean():.2f}")
    print(f"rounds 1-5: off {off[:5].mean():.2f}, on {on[:5].mean():.2f} (reasons steer before the model has data)")
    print(f"refit after a verdict: {fit_ms:.2f} ms mean")


if __name__ == "__main__":
    main()
