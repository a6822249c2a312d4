"""The drum model's card: `python -m engine.training.drum_card CHECKPOINT` prints it from the checkpoint's record.

The committed card (engine/model/checkpoints/drums-groove.md) is this function's output for the
committed checkpoint; a test regenerates it and compares, so the card cannot drift from the weights.
"""
from __future__ import annotations

import sys
from pathlib import Path


def render(record: dict, config: dict, name: str) -> str:
    """Markdown for a drum checkpoint's record and config."""
    from engine.training.drums import DrumTrainConfig

    # checkpoints trained before min_genre_recordings was a config field used its default
    # checkpoints trained before genre_balance was a config field drew every window alike (balance 1)
    train = {**vars(DrumTrainConfig()), "genre_balance": 1.0, **record["train_config"]}
    if train["genre_balance"] == 1.0:
        balance = "windows drawn alike (so rock's windows fill most batches)"
    else:
        balance = (f"each window drawn genre first, a genre weighted by (its windows)^{train['genre_balance']:g}, "
                   "so the small genres are heard more often than their share of the data")
    history = "\n".join(
        f"| {h['step']} | {h['train_loss']:.3f} | {h['val']['total']:.3f} | {h['val']['hit']:.4f} | "
        f"{h['val']['velocity']:.3f} | {h['val']['offset']:.3f} |" for h in record["history"])
    row = (f"| Groove MIDI Dataset (Magenta; copy in github:zharry29/drums-with-llm `groove/`, manifest "
           f"engine/training/groove_manifest.json) | CC BY 4.0 | {record['recordings_train']} / "
           f"{record['recordings_validation']} | {record['bars_train']:,} / {record['bars_validation']:,} | "
           f"{len(config['genres'])} conditioned (of {len(record['genre_recordings_train'])}) | the dataset's own "
           "(test split held out for `cadenza eval`) |")
    genres = ", ".join(f"{g} {n}" for g, n in sorted(record["genre_recordings_train"].items(), key=lambda x: -x[1]))
    return f"""# {name}: Cadenza's drum model

A GRU ({config['layers']} layers, {config['hidden']} units, {record['parameters']:,} parameters, stored as
float16) over 16th-note steps (engine/model/drums.py). At each step it reads the previous step's hits of the
9-voice Groove kit (kick, snare, closed and open hi-hat, low, mid and high tom, crash, ride) with their
velocity and timing offset, and the conditioning: genre ({len(config['genres'])} Groove genres, or none),
tempo, the step's place in a 4/4 bar, a fill flag (the bar that ends a phrase) and a phrase-start flag. It
writes per voice a hit probability, a velocity bin ({config['velocity_bins']} bins) and a micro-timing
bin ({config['offset_bins']} bins of 1/{config['offset_bins']} step, -0.5..0.5 step): velocity and
timing are sampled from what the drummers played. Config inside the checkpoint.

Primers: {sum(len(v) for v in record.get('primers', {}).values())} two-bar grooves ({train['primers_per_genre']}
per genre) drawn with the seed from the training split's 4/4 beat recordings are stored in the checkpoint;
the GRU hears one (chosen by the clip's seed) before the clip, so it starts inside a groove (started from
silence, a sampled clip fell into near-empty bars in about 15% of rock bars). The tempo the model hears is
held inside the range its genre's training recordings were played at (also stored); the hits are written at
the clip's own tempo. Hits are sampled at
temperature `DRUM_TEMPERATURE` (engine/config.py); velocity and timing at 1. The hit logits are the 'no
genre' prediction's pushed `DRUM_GENRE_GUIDANCE` times as far toward the genre's (classifier-free
guidance: the genre was dropped {train['genre_dropout']:.0%} of the time in training, so the model knows
both), so the genre counts against the primer's groove; the measure and the choice are in engine/config.py.
A style that names a time keeper (styles.toml: jazz keeps time on the ride) is primed only with its genre's
grooves kept on that cymbal, and the model's hi-hat strokes are played there; a style's timeline (a clave, jazz's
hi-hat foot) is played by the model on one of its voices through the clip, so it hears it.

## Data

| source | licence | recordings (train / validation) | bars (train / validation) | genres | split |
|---|---|---:|---:|---|---|
{row}

Training recordings per genre (a genre with fewer than {train['min_genre_recordings']} is trained as 'no
genre'): {genres}. 10 drummers (mostly drummers 1 and 7), on a Roland TD-11
e-kit, 13.6 hours in all; 1,138 of 1,150 recordings are 4/4 (five 3/4, five 6/8, one 5/4, one 5/8).
Fill labels: every bar of a `fill` recording; in `beat` recordings, bars whose tom or snare hits
stand out from the recording's usual (engine/training/groove.py) — the dataset labels fills only
per recording.

## Training

`{record['command']}` (DIR: the Groove folder, e.g. /work/data/groove). Batch {train['batch_size']}
windows of up to {train['window_bars']} bars ({balance}), AdamW lr {train['learning_rate']} cosine to
{train['min_learning_rate']}, warm-up {train['warmup_steps']}, weight decay {train['weight_decay']},
genre dropped {train['genre_dropout']:.0%} of the time (the 'no genre' embedding), {train['threads']} torch
thread under `nice` on the shared 2-core machine. Wall-clock time: {record['train_seconds'] / 60:.1f} min.
Loss = 9 x hit BCE per cell + velocity CE + offset CE per hit (nats).

| step | train loss | validation loss | hit BCE per cell | velocity CE per hit | offset CE per hit |
|---:|---:|---:|---:|---:|---:|
{history}

For scale: a uniform guess costs {_log(config['velocity_bins']):.3f} (velocity) and
{_log(config['offset_bins']):.3f} (offset) nats per hit.
"""


def _log(n: int) -> float:
    import math

    return math.log(n)


def card_for(path: str | Path) -> str:
    """The card of a drum checkpoint file."""
    import torch

    blob = torch.load(str(path), map_location="cpu", weights_only=False)
    return render(blob["record"], blob["config"], Path(path).name)


if __name__ == "__main__":
    print(card_for(sys.argv[1]), end="")
