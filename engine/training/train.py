"""Training the generator: `cadenza train`, reproducible from a seed.

Without ``--data`` it trains from scratch on the music21 corpus (engine/training/corpus.py
prepares and caches it); with ``--data DIR`` it fine-tunes a checkpoint on a folder of the
user's own MIDI files. The checkpoint holds the weights (float16), the model config, the
tokenizer parameters, the conditioning vocabulary and the training record (data, steps,
time, validation loss), so a checkpoint alone is enough to generate and to write its card.

Under ``torchrun --nproc_per_node=N`` the same command trains data-parallel
(DistributedDataParallel; gloo on CPU, NCCL on GPUs). Every rank draws the same global batch
stream from the same seed and trains on its own slice of each batch (rank r takes examples
r, r+N, ...), as DistributedSampler does with indices, so the global batch and its examples
are those of a one-process run. Rank 0 alone prepares the corpus cache, validates and writes
the checkpoint.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from engine.config import FINE_TUNE_STEPS, TRAIN_SEED, TRAIN_STEPS
from engine.model.tokens import TOKENIZER_PARAMS, Vocab, build_tokenizer
from engine.model.transformer import ModelConfig
from engine.training.corpus import default_cache_dir, prepare
from engine.training.dataset import (
    EncodedWork,
    collate,
    encode_corpus,
    encode_midi_folder,
    sample_example,
    slots_in,
    validation_examples,
)
from engine.training.schedule import warmup_cosine

CHECKPOINT_FORMAT = 1
VALIDATION_SHARD_EXAMPLES = 48
PAD_ID = 0  # MidiTok puts PAD first; padded positions are never targets, so its value only fills


def shard_path(checkpoint: Path) -> Path:
    """Where the committed validation shard of a checkpoint lives (next to it)."""
    return checkpoint.with_name(checkpoint.stem + "-validation.npz")


def shard_of(examples: list[tuple[list[int], int]]) -> list[tuple[list[int], int]]:
    """Evenly spaced validation examples (every collection is represented), at most VALIDATION_SHARD_EXAMPLES."""
    return examples[:: max(1, len(examples) // VALIDATION_SHARD_EXAMPLES)][:VALIDATION_SHARD_EXAMPLES]


def write_validation_shard(examples: list[tuple[list[int], int]], path: Path) -> None:
    """Held-out examples as token ids, so a test can recompute the card's validation loss."""
    lengths = np.array([len(seq) for seq, _ in examples], dtype=np.int32)
    prefixes = np.array([p for _, p in examples], dtype=np.int32)
    tokens = np.concatenate([np.asarray(seq, dtype=np.int16) for seq, _ in examples])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, tokens=tokens, lengths=lengths, prefixes=prefixes)


def read_validation_shard(path: Path) -> list[tuple[list[int], int]]:
    """The examples written by write_validation_shard."""
    data = np.load(path)
    out, at = [], 0
    for length, prefix in zip(data["lengths"], data["prefixes"], strict=True):
        out.append((data["tokens"][at:at + length].astype(np.int64).tolist(), int(prefix)))
        at += int(length)
    return out


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (with the seed, it decides the weights)."""
    seed: int = TRAIN_SEED
    steps: int = TRAIN_STEPS
    batch_size: int = 24
    block_size: int = ModelConfig.block_size
    n_layer: int = ModelConfig.n_layer
    n_head: int = ModelConfig.n_head
    n_embd: int = ModelConfig.n_embd
    dropout: float = ModelConfig.dropout
    learning_rate: float = 3e-3
    min_learning_rate: float = 3e-4
    warmup_steps: int = 200
    weight_decay: float = 0.1
    eval_every: int = 2000
    threads: int = 2
    bf16: bool = True
    bucket: int = 4  # batches drawn at once and grouped by length, so little of a batch is padding


@dataclass(frozen=True)
class Ranks:
    """Where this process sits in a (torchrun) training job; one process is rank 0 of 1."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that logs, validates and writes files."""
        return self.rank == 0


def current_ranks() -> Ranks:
    """This process's ranks: from the initialised process group, else a single process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return Ranks()
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                 int(os.environ.get("LOCAL_WORLD_SIZE", dist.get_world_size())))


@contextlib.contextmanager
def distributed() -> Iterator[Ranks]:
    """Join the torchrun job named by RANK/WORLD_SIZE/LOCAL_RANK, if any, for the block.

    gloo on CPU, NCCL when CUDA is there. Without those variables (or with WORLD_SIZE=1)
    nothing is initialised and the block runs as the single process it is. On leaving, the
    ranks meet at a barrier and the process group is destroyed.
    """
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or dist.is_initialized():
        yield current_ranks()
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend)
    try:
        yield current_ranks()
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _all_sum(values: list[float], ranks: Ranks) -> list[float]:
    """Element-wise sum over the ranks (the values themselves for one process)."""
    if ranks.world == 1:
        return values
    import torch
    import torch.distributed as dist

    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


FINE_TUNE = TrainConfig(steps=FINE_TUNE_STEPS, learning_rate=3e-4, min_learning_rate=3e-5, warmup_steps=20,
                        eval_every=100)


def _batches(works: list[EncodedWork], weights: np.ndarray, rng: np.random.Generator, vocab: Vocab,
             config: TrainConfig):
    """Endless training batches; each group of ``bucket`` batches is sorted by length."""
    while True:
        pool = [sample_example(works, weights, rng, vocab, config.block_size)
                for _ in range(config.batch_size * config.bucket)]
        pool.sort(key=lambda example: len(example[0]))
        groups = [pool[i:i + config.batch_size] for i in range(0, len(pool), config.batch_size)]
        for index in rng.permutation(len(groups)):
            yield groups[int(index)]


def _lr(config: TrainConfig, step: int) -> float:
    done = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return warmup_cosine(step, config.warmup_steps, done, config.learning_rate, config.min_learning_rate)


def evaluate(model, examples: list[tuple[list[int], int]], pad: int, batch_size: int = 16) -> float:
    """Mean cross-entropy per predicted token over fixed examples (no dropout)."""
    import torch

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device  # a GPU rank's model; the CPU otherwise
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            inputs, targets = collate(examples[i:i + batch_size], pad)
            inputs, targets = inputs.to(device), targets.to(device)
            logits, _ = model(inputs)
            losses = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)),
                                                       targets.reshape(-1), ignore_index=-100, reduction="sum")
            total += float(losses)
            count += int((targets != -100).sum())
    model.train(was_training)
    return total / max(1, count)


def score(checkpoint: dict, val_examples: list[tuple[list[int], int]],
          shard: list[tuple[list[int], int]]) -> dict:
    """Validation figures of the weights as stored (float16), for the record and the card."""
    from engine.model.transformer import from_checkpoint

    model = from_checkpoint(checkpoint)
    val_loss = evaluate(model, val_examples, PAD_ID)
    return {
        "validation_examples": len(val_examples),
        "validation_loss": val_loss,
        "validation_perplexity": math.exp(val_loss),
        "validation_shard_examples": len(shard),
        "validation_shard_loss": evaluate(model, shard, PAD_ID),
    }


def train(works: list[EncodedWork], vocab: Vocab, config: TrainConfig, out: Path, data_note: str,
          init: dict | None = None, progress: bool = True) -> dict:
    """Train (or fine-tune from the checkpoint ``init``) and write the checkpoint to ``out``.

    In a distributed job (see ``distributed()``) every rank calls this; rank 0 writes the
    checkpoint and returns it, the other ranks return None.
    """
    import torch
    from tqdm import tqdm

    from engine.model.transformer import ModelConfig, MusicTransformer, from_checkpoint

    ranks = current_ranks()
    progress = progress and ranks.main
    torch.manual_seed(config.seed)  # the same on every rank: same initial weights, same batch stream
    torch.set_num_threads(max(1, config.threads // ranks.local_world))  # the ranks share the machine's cores
    rng = np.random.default_rng(config.seed)
    train_works = [w for w in works if not w.validation]
    val_works = [w for w in works if w.validation]
    if not train_works:  # a small folder whose works all hash into validation
        train_works, val_works = val_works, []
    if not val_works:  # tiny user folders: hold out the last work so there is a validation figure
        val_works = train_works[-1:]
        train_works = train_works[:-1] or val_works
    weights = np.array([len(w.bars) for w in train_works], dtype=np.float64)
    weights /= weights.sum()

    if init is not None:
        model = from_checkpoint(init)
        model_config = model.config
        config = replace(config, block_size=model_config.block_size, n_layer=model_config.n_layer,
                         n_head=model_config.n_head, n_embd=model_config.n_embd, dropout=model_config.dropout)
    else:
        model_config = ModelConfig(vocab_size=vocab.size, block_size=config.block_size, n_layer=config.n_layer,
                                   n_head=config.n_head, n_embd=config.n_embd, dropout=config.dropout)
        model = MusicTransformer(model_config)
    val_examples = validation_examples(val_works, vocab, config.block_size) if ranks.main else []
    validation_voices = "all voices"
    if ranks.main and not val_examples:
        # A few dense takes (a keyboard comping in four-note chords) can have no bar of all their
        # voices within a small context: validate on each voice alone, as training also sees them.
        val_examples = validation_examples(val_works, vocab, config.block_size, one_voice=True)
        validation_voices = "one voice at a time"
        if not val_examples:
            raise ValueError(f"no validation window of the held-out {len(val_works)} work(s) fits the model's "
                             f"context of {config.block_size} tokens, even one bar of one voice: give more or "
                             "sparser music, or start from a checkpoint with a longer context")
    model.train()
    trained = model  # what is validated and saved; `model` is what the steps run (DDP-wrapped in a job)
    if ranks.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        if torch.cuda.is_available():
            model = DistributedDataParallel(model.to(f"cuda:{ranks.local_rank}"), device_ids=[ranks.local_rank])
        else:
            model = DistributedDataParallel(model)
    device = next(model.parameters()).device
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.learning_rate,
                                  betas=(0.9, 0.95))
    history, curve = [], []
    tokens_seen = 0
    shard = hashlib.sha256()  # what this rank trained on, so a job can show its ranks saw different data
    shard_examples = 0
    started = time.perf_counter()
    batches = _batches(train_works, weights, rng, vocab, config)
    bar = tqdm(range(config.steps), desc="training", unit="step", disable=not progress)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = _lr(config, step)
        batch = next(batches)[ranks.rank::ranks.world]  # this rank's slice of the global batch
        for seq, _ in batch:
            shard.update(np.asarray(seq, dtype=np.int32).tobytes())
        shard_examples += len(batch)
        inputs, targets = collate(batch, vocab.pad)
        inputs, targets = inputs.to(device), targets.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            _, loss = model(inputs, targets)
        local_tokens = int((targets != -100).sum())
        step_tokens, loss_sum = _all_sum([float(local_tokens), loss.item() * local_tokens], ranks)
        # DDP averages gradients over ranks; weighting each rank's mean by its share of the batch's
        # tokens makes that average the gradient of the mean over the whole batch, as in one process.
        optimizer.zero_grad(set_to_none=True)
        (loss * (local_tokens * ranks.world / step_tokens)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        batch_loss = loss.item() if ranks.world == 1 else loss_sum / step_tokens  # the whole batch's, on every rank
        curve.append(batch_loss)
        tokens_seen += int(step_tokens)
        bar.set_postfix(loss=f"{batch_loss:.3f}", tok_s=f"{tokens_seen / (time.perf_counter() - started):.0f}")
        if ranks.main and ((step + 1) % config.eval_every == 0 or step + 1 == config.steps):
            val = evaluate(trained, val_examples, vocab.pad)
            history.append({"step": step + 1, "train_loss": batch_loss, "val_loss": val})
            bar.write(f"step {step + 1}: train loss {batch_loss:.3f}, validation loss {val:.3f} "
                      f"(perplexity {math.exp(val):.2f})")
    seconds = time.perf_counter() - started
    rank_shards = [{"rank": ranks.rank, "examples": shard_examples, "digest": shard.hexdigest()}]
    if ranks.world > 1:
        import torch.distributed as dist

        rank_shards = [None] * ranks.world
        dist.all_gather_object(rank_shards, {"rank": ranks.rank, "examples": shard_examples,
                                             "digest": shard.hexdigest()})
    if not ranks.main:
        return None
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "model_config": model_config.to_dict(),
        "state_dict": {k: v.detach().cpu().to(torch.float16) for k, v in trained.state_dict().items()
                       if k != "head.weight"},
        "tokenizer_params": TOKENIZER_PARAMS,
        "conditions": vocab.conditions,
    }
    checkpoint["record"] = {
        "data": data_note,
        "works_train": len(train_works),
        "works_validation": len(val_works),
        "validation_voices": validation_voices,
        "bars_train": int(sum(len(w.bars) for w in train_works)),
        "tokens_train": int(sum(sum(len(b) for b in w.bars) for w in train_works)),
        "slots_train": slots_in(train_works),
        "styles_train": sorted({w.style for w in train_works}),
        "steps": config.steps,
        "tokens_seen": tokens_seen,
        "train_seconds": seconds,
        "parameters": trained.num_parameters(),
        "history": history,
        "train_loss_curve": [round(x, 5) for x in curve],
        "distributed": {"world_size": ranks.world, "per_rank_batch": -(-config.batch_size // ranks.world),
                        "ranks": rank_shards},
        "train_config": asdict(config),
        "fine_tuned_from": init["record"] if init is not None else None,
    }
    validation_shard = shard_of(val_examples)
    write_validation_shard(validation_shard, shard_path(out))
    checkpoint["record"].update(score(checkpoint, val_examples, validation_shard))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    torch.save(checkpoint, tmp)
    tmp.replace(out)
    return checkpoint


def run(data: Path | None, out: Path, steps: int | None, seed: int | None, init_path: Path | None,
        corpus_dir: Path | None = None) -> dict | None:
    """`cadenza train`: prepare data, train or fine-tune, write the checkpoint.

    Under torchrun every rank runs this; rank 0 returns the checkpoint, the others None.
    """
    with distributed() as ranks:
        return _run(data, out, steps, seed, init_path, corpus_dir, ranks)


def _run(data: Path | None, out: Path, steps: int | None, seed: int | None, init_path: Path | None,
         corpus_dir: Path | None, ranks: Ranks) -> dict | None:
    import torch
    from tqdm import tqdm

    vocab = Vocab(build_tokenizer())
    if data is None:
        bar = tqdm(desc="parsing corpus", unit="file", disable=not ranks.main)

        def update(done: int, total: int) -> None:
            bar.total, bar.n = total, done
            bar.refresh()

        if ranks.main:  # one rank fills the corpus cache; the others wait and read it
            directory = prepare(corpus_dir or default_cache_dir(), progress=update)
        if ranks.world > 1:
            torch.distributed.barrier()
        if not ranks.main:
            directory = prepare(corpus_dir or default_cache_dir())
        bar.close()
        encode_bar = tqdm(desc="tokenizing", unit="work", disable=not ranks.main)

        def encoded(done: int, total: int) -> None:
            encode_bar.total, encode_bar.n = total, done
            encode_bar.refresh()

        works = encode_corpus(directory, vocab, encoded)
        encode_bar.close()
        config = TrainConfig()
        note = f"music21 corpus (engine/catalog/data/model.toml), cached in {directory}"
        init = torch.load(init_path, weights_only=False) if init_path else None
    else:
        works = encode_midi_folder(data, vocab)
        if not works:
            raise ValueError(f"no usable MIDI in {data}: every file lacked pitched notes or had an unsupported meter")
        config = FINE_TUNE
        note = f"{len(works)} MIDI files from {data}"
        if init_path is None:
            raise ValueError("fine-tuning needs a checkpoint to start from")
        init = torch.load(init_path, weights_only=False)
    if steps is not None:
        config = replace(config, steps=steps, eval_every=min(config.eval_every, steps))
    if seed is not None:
        config = replace(config, seed=seed)
    return train(works, vocab, config, out, note, init=init)


def rescore(path: Path, corpus_dir: Path | None = None) -> dict:
    """Recompute a corpus-trained checkpoint's validation figures from its stored weights and save them."""
    import torch

    checkpoint = torch.load(path, weights_only=False)
    vocab = Vocab(build_tokenizer(checkpoint["tokenizer_params"]), list(checkpoint["conditions"]))
    works = encode_corpus(prepare(corpus_dir or default_cache_dir()), vocab)
    block = checkpoint["model_config"]["block_size"]
    val_examples = validation_examples([w for w in works if w.validation], vocab, block)
    shard = shard_of(val_examples)
    write_validation_shard(shard, shard_path(path))
    checkpoint["record"].update(score(checkpoint, val_examples, shard))
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(checkpoint, tmp)
    tmp.replace(path)
    return checkpoint["record"]
