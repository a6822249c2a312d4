"""The model card: `python -m engine.training.card CHECKPOINT` prints it from the checkpoint's own record.

The figures come from the record `cadenza train` stored in the checkpoint, so the card
cannot drift from the weights (a test recomputes the validation-shard loss and compares).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

from engine.training.corpus import collections


def _collections() -> str:
    """The corpus collections as model.toml lists them: name (style token)."""
    return ", ".join(f"{c.name} (`{c.style}`)" for c in collections())


def render(record: dict, model_config: dict, name: str) -> str:
    """Markdown for a checkpoint's record."""
    config = record["train_config"]
    history = "\n".join(f"| {h['step']} | {h['train_loss']:.3f} | {h['val_loss']:.3f} | {math.exp(h['val_loss']):.2f} |"
                        for h in record["history"])
    slots = record["slots_train"]
    voices = record.get("validation_voices", "all voices")  # fine-tunes on dense takes: one voice at a time
    return f"""# {name}: Cadenza's generator checkpoint

A nanoGPT-shaped decoder ({model_config['n_layer']} layers, {model_config['n_head']} heads,
d={model_config['n_embd']}, context {model_config['block_size']} tokens, {record['parameters']:,} parameters,
stored as float16) over MidiTok 3.1 REMI-with-programs tokens plus a conditioning prefix (style, key tonic
and mode, meter, tempo bucket, density, bar count, voice slots). Config, tokenizer parameters and
conditioning vocabulary are inside the checkpoint (`engine/model/transformer.py`, `engine/model/tokens.py`).

## Data

{record['data']}.

- Collections (engine/catalog/data/model.toml): all of music21's corpus that is music and parses with one
  meter: {_collections()}. Left out: Roman-numeral analyses (.rntxt), Finale files (.mus, .musx), the
  demos and theory exercises. Works with more than one time signature or a meter outside N/2, N/4,
  N/8, N/16 were skipped; pickups were shifted so bar lines fall on bars.
- Works: {record['works_train']} for training, {record['works_validation']} held out for validation
  (split by work id, crc32 mod 100 < 5). Training bars {record['bars_train']:,}, tokens
  {record['tokens_train']:,} (before augmentation).
- Voices: slot 0 (melody) in {slots[0]} works, the bass slot in {slots[3]}, inner voices in {slots[1]}
  (chorales, renaissance and classical works in parts); the folk and fiddle tunes are melody only.
- Augmentation, per example: a random window of 1-16 bars, transposed by -5..+6 semitones
  (key token and pitches together), inner voices dropped at random, tempo token dropped 30% of the time.
- Tempo: almost no corpus work has a metronome mark, so the tempo token is nearly always
  `Tempo_unknown` in training; tempo is written exactly by compose, not by the model.
- Odd meters are nearly absent (of 13,464 works: 5/8 in 4, 5/4 in 3, 7/8 in 2); the decoding grammar,
  not the data, keeps them.

## Training

`cadenza train --out engine/model/checkpoints/{name} --steps {record['steps']} --seed {config['seed']}` (batch
{config['batch_size']}, AdamW lr {config['learning_rate']} cosine to {config['min_learning_rate']},
warm-up {config['warmup_steps']}, weight decay {config['weight_decay']}, dropout {config['dropout']}, bf16
autocast, {config['threads']} torch threads under `nice` on the shared 2-core machine).
Tokens seen: {record['tokens_seen']:,}. Wall-clock training time: {record['train_seconds'] / 60:.1f} min.

| step | train loss | validation loss | perplexity |
| --- | --- | --- | --- |
{history}

## Validation (the float16 weights as stored)

- Held-out works, {record['validation_examples']} fixed windows of up to 8 bars, {voices}, untransposed:
  validation loss {record['validation_loss']:.4f} (perplexity {record['validation_perplexity']:.4f})
  per predicted token (prefix tokens are given, not predicted).
- Committed validation shard ({record['validation_shard_examples']} windows): loss {record['validation_shard_loss']:.4f}
  (`{Path(name).stem}-validation.npz`, evenly spaced among those windows).
  `tests/engine/test_checkpoint.py` recomputes it from the weights.

## How it is used

`engine/compose/pipeline.py` gives the model's voices to the melody part (top voice) and a keys or pad
part (the others); constrained decoding (`engine/model/decode.py`) keeps bar count, meter grid, key
and ranges by construction; the chords detected in its voices drive the style arranger's
bass, comping and drums; compose listens to each draft with the key finder it uses on input clips
and draws again (model.toml `key_attempts`) when the draft is heard in another key.
`engine/compose/continuation.py` continues an input clip in its detected key.
"""

def main() -> None:
    import torch

    path = Path(sys.argv[1])
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    print(render(checkpoint["record"], checkpoint["model_config"], path.name), end="")


if __name__ == "__main__":
    main()
