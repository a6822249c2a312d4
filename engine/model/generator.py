"""The learned generator: load the committed checkpoint, write voices under constraints.

`Generator.generate` runs the model one token at a time with a key/value cache, masking the
logits by the grammar of engine/model/decode.py, so the notes it returns keep the asked bar count,
meter grid, key and ranges whatever the weights are. When a clip is longer than the model's
context, the context slides: the prefix is kept and the oldest bars are dropped.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.catalog.model_data import model_data
from engine.config import ANSWER_REDRAWS, INFERENCE_THREADS
from engine.errors import Broken, Cancelled, SpecError, check_stop
from engine.model.decode import Constraints, Grammar, sample
from engine.music.notes import GridNote
from engine.music.theory import Key, Meter

CHECKPOINT_ENV = "CADENZA_CHECKPOINT"
CHECKPOINT_NAME = "cadenza-small.pt"
TEMPERATURE = 0.95
TOP_P = 0.95


class CheckpointMissing(Broken, FileNotFoundError):
    """The generator's checkpoint is not where it should be."""


def default_checkpoint() -> Path:
    """The checkpoint compose uses: $CADENZA_CHECKPOINT, else the one committed in engine/model/checkpoints."""
    named = os.environ.get(CHECKPOINT_ENV)
    return Path(named) if named else Path(__file__).parent / "checkpoints" / CHECKPOINT_NAME


@dataclass(frozen=True)
class Request:
    """What the model is asked for, in its own terms (compose translates a MusicSpec into this)."""

    style: str          # a model style token: chorale, folk, celtic, user
    key: Key
    meter: Meter
    tempo_bpm: float | None
    density: int        # 0-3
    bars: int
    voices: dict[int, tuple[int, int]]  # slot -> pitch range
    chromatic: bool
    seed: int
    key_pull: float = 1.0  # scales the lean toward tonic-triad tones on strong beats ([decoding] in model.toml)
    chords: tuple[tuple[int, int, int], ...] = ()  # a harmonic plan: per bar the (root, third, fifth) the
    # strong beats lean to instead of the tonic triad (engine/compose/pipeline.py makes it from the style)
    fill_rests: bool = True  # the model's voices are the whole clip: no silence longer than [decoding]'s
    # max_rest_quarters (compose turns it off when arranger parts play on through the model's rests)
    syncopation: float = 0.0  # logits on off-beat onsets: a style's rhythm feel (model.toml's style_map)
    chords_strict: bool = False  # ``chords`` are the user's: strong beats on their tones, no tonic opening/cadence
    phrase_ends: tuple[int, ...] = ()  # bars (from 0) that end a phrase: the melody arrives on a long note
    contrasts: tuple[tuple[int, int], ...] = ()  # (bar, earlier bar), from 0: their melody rhythms differ
    returns: tuple[tuple[int, int, bool], ...] = ()  # (bar, earlier bar, whole), from 0: the melody brings back
    # that bar's rhythm, whole or its head with a new tail (engine/model/decode.py)


class Generator:
    """A loaded checkpoint: the model, its vocabulary and its training record."""

    def __init__(self, path: Path) -> None:
        import torch

        from engine.model.tokens import Vocab, build_tokenizer
        from engine.model.transformer import CachedDecoder, from_checkpoint

        if not Path(path).is_file():
            raise CheckpointMissing(
                f"the generator's checkpoint is missing: {path} (train one with `cadenza train --out {path}`, "
                f"or point ${CHECKPOINT_ENV} at one)")
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        self.path = Path(path)
        self.record: dict = checkpoint["record"]
        self.vocab = Vocab(build_tokenizer(checkpoint["tokenizer_params"]), list(checkpoint["conditions"]))
        self.model = from_checkpoint(checkpoint)
        self.decoder = CachedDecoder(self.model)
        if self.model.config.vocab_size != self.vocab.size:
            raise ValueError(f"{path}: model vocabulary {self.model.config.vocab_size} != tokenizer {self.vocab.size}")
        self._lock = threading.Lock()  # one generation at a time per loaded model
        self.last_tokens = 0  # tokens decoded by the last generate() call (for benchmarks)

    def prefix(self, request: Request, bars: int | None = None) -> list[int]:
        """The conditioning prefix; ``bars`` overrides the Bars token (context + new bars)."""
        return self.vocab.prefix(request.style, request.key, request.meter, request.tempo_bpm, request.density,
                                 bars or request.bars, list(request.voices))

    def generate(self, request: Request, context: list[int] | None = None,
                 prefix_bars: int | None = None, cadence: bool = True,
                 should_stop: Callable[[], bool] | None = None) -> list[GridNote]:
        """The notes of ``request.bars`` new bars, timed from their first bar line.

        ``should_stop`` is polled at every bar line; when it returns true decoding ends with Cancelled.

        ``context`` is whole bars of tokens that come before them (a clip being continued);
        ``prefix_bars`` is then the length the prefix announces (context bars + new bars).
        ``cadence`` closes the last bar on the tonic (off when the music is meant to go on); a
        clip without ``context`` opens on the tonic chord (engine/model/decode.py says how).
        """
        import numpy as np
        import torch

        grammar = Grammar(self.vocab, Constraints(request.key, request.meter, request.bars, dict(request.voices),
                                                  request.chromatic, cadence and not request.chords_strict,
                                                  opening=not context and not request.chords_strict,
                                                  chords_strict=request.chords_strict,
                                                  tonic_bias=tuple(request.key_pull * b for b in
                                                                   decoding_settings(third_quality(request.key))["tonic_bias"]),
                                                  chord_plan=tuple(request.chords),
                                                  syncopation=request.syncopation,
                                                  phrase_ends=frozenset(request.phrase_ends),
                                                  returns=tuple(request.returns),
                                                  **decoding_extras(third_quality(request.key), request.fill_rests)))
        prefix = self.prefix(request, prefix_bars)
        block = self.model.config.block_size
        history = list(context or [])
        bar_starts = [i for i, t in enumerate(history) if t == self.vocab.bar]
        rng = np.random.default_rng(request.seed)
        contrasts: dict[int, list[int]] = {}
        for bar, other in request.contrasts if 0 in request.voices else ():
            contrasts.setdefault(bar, []).append(other)
        start: tuple[Grammar, int, int] | None = None  # the state at the current bar's Bar token
        redraws = 0
        with self._lock:
            threads = torch.get_num_threads()
            torch.set_num_threads(INFERENCE_THREADS)
            try:
                logits = self.decoder.reset(self._window(prefix, history, bar_starts, block))
                while not grammar.done:
                    bias = grammar.bias()
                    # a bar drawn again samples the model's whole distribution: the nucleus alone may hold one rhythm
                    token = sample(logits if bias is None else logits + bias, grammar.allowed(), rng,
                                   TEMPERATURE, TOP_P if not redraws else 1.0)
                    if token in (self.vocab.bar, self.vocab.eos) and start is not None and \
                            self._repeats(grammar, contrasts) and redraws < ANSWER_REDRAWS:
                        # the bar just written plays the rhythm of the one before where it should answer it:
                        # write it again from its bar line (the rng has moved on, so the draw differs)
                        grammar, redraws = start[0].snapshot(), redraws + 1
                        del history[start[1]:], bar_starts[start[2]:]
                        logits = self.decoder.reset(self._window(prefix, history, bar_starts, block))
                        continue
                    grammar.advance(token)
                    if token == self.vocab.bar:
                        bar_starts.append(len(history))
                        if should_stop and should_stop():
                            raise Cancelled(f"stopped after {len(bar_starts)} bars")
                        check_stop(f"decoding bar {len(bar_starts)}")
                    history.append(token)
                    if token == self.vocab.bar and contrasts:
                        start, redraws = (grammar.snapshot(), len(history), len(bar_starts)), 0
                    if grammar.done:
                        break
                    if self.decoder.length >= block:
                        logits = self.decoder.reset(self._window(prefix, history, bar_starts, block))
                    else:
                        logits = self.decoder.step(token)
            finally:
                torch.set_num_threads(threads)
        self.last_tokens = len(history) - len(context or [])
        return grammar.notes

    @staticmethod
    def _repeats(grammar: Grammar, contrasts: dict[int, list[int]]) -> bool:
        """True when the melody of the bar being closed plays the rhythm of a bar it should differ from."""
        bar = grammar.bars_started - 1
        onsets = grammar.melody_onsets(bar) if bar in contrasts else None
        return bool(onsets) and any(onsets == grammar.melody_onsets(other) for other in contrasts[bar])

    def token_logprobs(self, tokens: list[int]) -> list[float]:
        """log p(tokens[i] | tokens[:i]) for i = 1, 2, ... under the model: one forward pass over at
        most one block (longer input is cut at the block's end)."""
        return self.token_logprobs_batch([tokens])[0]

    def token_logprobs_batch(self, sequences: list[list[int]]) -> list[list[float]]:
        """`token_logprobs` of several sequences in one forward pass: shorter ones are padded on the
        right, which the causal model never lets earlier positions see."""
        import torch

        block = self.model.config.block_size
        sequences = [list(s[:block]) for s in sequences]
        width = max((len(s) for s in sequences), default=0)
        if width < 2:
            return [[] for _ in sequences]
        batch = torch.tensor([s + [0] * (width - len(s)) for s in sequences])  # (B, T)
        with torch.inference_mode(), self._lock:
            threads = torch.get_num_threads()
            torch.set_num_threads(INFERENCE_THREADS)
            try:
                logits, _ = self.model(batch)  # (B, T, vocab)
            finally:
                torch.set_num_threads(threads)
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            picked = logp.gather(2, batch[:, 1:].unsqueeze(-1)).squeeze(-1)  # (B, T-1)
        return [picked[i, : max(0, len(s) - 1)].tolist() for i, s in enumerate(sequences)]

    @staticmethod
    def _window(prefix: list[int], history: list[int], bar_starts: list[int], block: int) -> list[int]:
        """The prefix and as many of the latest whole bars as fit in three quarters of the block."""
        budget = block * 3 // 4 - len(prefix)
        start = len(history)
        for s in reversed(bar_starts):
            if len(history) - s > budget:
                break
            start = s
        if start == len(history) and len(history) > 0:  # the current bar alone is too long: keep its tail
            start = max(0, len(history) - budget)
        return prefix + history[start:]


_loaded: dict[Path, Generator] = {}
_loading = threading.Lock()
LOAD_SECONDS: dict[Path, float] = {}  # how long each checkpoint took to load (engine metrics report it)


def load(path: Path | None = None) -> Generator:
    """The generator for a checkpoint, loaded once per process."""
    path = Path(path or default_checkpoint()).resolve()
    with _loading:
        if path not in _loaded:
            started = time.perf_counter()
            _loaded[path] = Generator(path)
            LOAD_SECONDS[path] = time.perf_counter() - started
        return _loaded[path]


@lru_cache(maxsize=1)
def style_map() -> dict[str, dict]:
    """Cadenza style -> model style, chromatic allowance and density (engine/catalog/data/model.toml)."""
    return dict(model_data()["style_map"])


def style_settings(style: str) -> dict:
    """The model settings for a Cadenza style; every catalogue style has an entry (tests/engine/test_catalog.py).

    ``default`` is what a clip read from a file, with no style of its own, is written with.
    """
    table = style_map()
    if style not in table:
        raise SpecError("style", f"{style!r} has no [style_map] entry in engine/catalog/data/model.toml; "
                                 f"styles with one: {', '.join(sorted(table))}")
    return table[style]


def harmony_style() -> str:
    """The model style asked for when it writes more voices than the melody (model.toml)."""
    return str(model_data()["harmony_style"])


def key_attempts() -> int:
    """How many drafts compose may make until one is heard in the asked key (model.toml)."""
    return max(1, int(model_data().get("key_attempts", 1)))


def third_quality(key: Key) -> str:
    """"minor" for modes with a minor third (minor, dorian, phrygian...), else "major"."""
    return "minor" if (key.scale_pcs()[2] - key.tonic_pc) % 12 == 3 else "major"


@lru_cache(maxsize=4)
def decoding_settings(mode: str) -> dict:
    """How decoding leans toward the key beyond the hard constraints ([decoding] in model.toml).

    ``mode`` is "major" or "minor": the quality of the key's third (dorian reads as minor).
    """
    table = model_data().get("decoding", {}).get(mode, {})
    return {"tonic_bias": tuple(float(table.get(f"{tone}_bias", 0.0)) for tone in ("root", "third", "fifth")),
            "plan_tonic_share": float(table.get("plan_tonic_share", 0.0)),
            "repeat_penalty": float(table.get("repeat_penalty", 0.0)),
            "repeat_window": int(table.get("repeat_window", 4)),
            "max_rest_quarters": float(table.get("max_rest_quarters", 0.0)),
            "max_lead_quarters": float(table.get("max_lead_quarters", 0.0))}


def decoding_extras(mode: str, fill_rests: bool = True) -> dict:
    """The Constraints fields [decoding] sets beyond the tonic pull (plan share, repetition penalty, rests);
    without ``fill_rests`` the voices may rest as long as they like (other parts play on)."""
    settings = decoding_settings(mode)
    extras = {name: settings[name] for name in ("plan_tonic_share", "repeat_penalty", "repeat_window",
                                                "max_rest_quarters", "max_lead_quarters")}
    if not fill_rests:
        extras["max_rest_quarters"] = 0.0
    return extras
