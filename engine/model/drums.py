"""The drum model: a small GRU over 16th-note steps, trained on the Groove MIDI Dataset.

At every step it reads the previous step's hits (9 voices, with their velocity and micro-timing
offset) and the conditioning: genre, tempo, the step's place in a 4/4 bar, whether this bar
is a fill (the bar that ends a phrase) and whether it starts a phrase. It writes, per voice, the
probability of a hit, a velocity bin and a timing-offset bin, so velocity and timing are sampled
from what the drummers played, not jittered.

Meters: Groove is 4/4 (1,138 of 1,150 recordings). A bar of another length is played as
segments of at most one 4/4 bar (5/4 = 3+2 beats, 7/4 = 4+3, 6/8 = one 12-step segment...); a
segment shorter than 16 steps keeps its first beat as a downbeat and its other steps aligned
to the end of a 4/4 bar, so it leads into the next downbeat as a 4/4 bar does. The bar's
length on the grid is the requested meter's, always: only positions inside it are written.

The config lives inside the checkpoint (`DrumConfig`), so a checkpoint alone rebuilds the model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.errors import check_stop

N_VOICES = 9
VOICE_PITCHES = (36, 38, 42, 46, 43, 47, 50, 49, 51)  # kick, snare, closed/open hat, low/mid/high tom, crash, ride
VOICE_NAMES = ("kick", "snare", "closed_hat", "open_hat", "low_tom", "mid_tom", "high_tom", "crash", "ride")
CRASH = VOICE_NAMES.index("crash")
HATS = (VOICE_NAMES.index("closed_hat"), VOICE_NAMES.index("open_hat"))  # the stick's hi-hat strokes
CYMBALS = (*HATS, VOICE_NAMES.index("ride"))  # the time keepers a groove keeps its time on
FREE, NEVER, ALWAYS, ACCENT = -1, 0, 1, 2  # a rule cell: the model's choice, no hit, a hit, an accented hit
POSITIONS = 16  # steps of a 4/4 bar: the model's sense of where it is
CHECKPOINT_NAME = "drums-groove.pt"


@dataclass
class DrumConfig:
    """The model's shape and its conditioning vocabulary (saved in the checkpoint)."""

    genres: tuple[str, ...] = ()
    hidden: int = 256
    layers: int = 2
    genre_dim: int = 16
    velocity_bins: int = 10
    offset_bins: int = 12
    dropout: float = 0.1
    tempo_center: float = 110.0
    tempo_scale: float = 40.0
    extra: dict = field(default_factory=dict)

    @property
    def per_voice(self) -> int:
        return 1 + self.velocity_bins + self.offset_bins

    @property
    def input_dim(self) -> int:
        return 3 * N_VOICES + POSITIONS + 3 + self.genre_dim


def segments(steps_in_bar: int) -> list[int]:
    """How a bar of this many 16th steps is cut into segments of at most 16 (module docstring)."""
    if steps_in_bar <= POSITIONS:
        return [steps_in_bar]
    count = -(-steps_in_bar // POSITIONS)
    unit = 4 if steps_in_bar % 4 == 0 else 2
    units = steps_in_bar // unit
    sizes = [units // count + (1 if i < units % count else 0) for i in range(count)]
    return [s * unit for s in sizes]


def positions(steps_in_bar: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each step of a bar: (4/4 position 0-15, first step of a segment?, in the bar's last segment?)."""
    pos, seg_start, last_seg = [], [], []
    sizes = segments(steps_in_bar)
    for k, size in enumerate(sizes):
        for i in range(size):
            pos.append(i if i < 4 or size == POSITIONS else POSITIONS - (size - i))
            seg_start.append(i == 0)
            last_seg.append(k == len(sizes) - 1)
    return np.array(pos), np.array(seg_start), np.array(last_seg)


def step_features(bar_steps: list[int], fill: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(steps, 18): one-hot 4/4 position, fill flag (last segment of a fill bar), phrase start (first segment)."""
    rows = []
    for bar, steps in enumerate(bar_steps):
        pos, _, last_seg = positions(steps)
        first_seg = np.zeros(steps, bool)
        first_seg[: segments(steps)[0]] = True
        f = np.zeros((steps, POSITIONS + 2), np.float32)
        f[np.arange(steps), pos] = 1.0
        f[:, POSITIONS] = float(fill[bar]) * last_seg
        f[:, POSITIONS + 1] = float(start[bar]) * first_seg
        rows.append(f)
    return np.concatenate(rows) if rows else np.zeros((0, POSITIONS + 2), np.float32)


class DrumModel(nn.Module):
    """GRU over steps; heads for hit logits and velocity/offset bins per voice."""

    def __init__(self, config: DrumConfig) -> None:
        super().__init__()
        self.config = config
        self.genre = nn.Embedding(len(config.genres) + 1, config.genre_dim)  # last index: no genre
        self.inp = nn.Linear(config.input_dim, config.hidden)
        self.gru = nn.GRU(config.hidden, config.hidden, num_layers=config.layers, batch_first=True,
                          dropout=config.dropout if config.layers > 1 else 0.0)
        self.head = nn.Linear(config.hidden, N_VOICES * config.per_voice)

    def forward(self, events: torch.Tensor, steps: torch.Tensor, tempo: torch.Tensor, genre: torch.Tensor,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """events (B,T,27) previous step's hits/velocity/offset; steps (B,T,18); tempo (B,); genre (B,).

        Returns logits (B,T,9,per_voice) and the GRU state.
        """
        B, T, _ = events.shape
        g = self.genre(genre)[:, None, :].expand(B, T, -1)
        t = ((tempo - self.config.tempo_center) / self.config.tempo_scale)[:, None, None].expand(B, T, 1)
        x = torch.relu(self.inp(torch.cat([events, steps, t, g], dim=-1)))
        y, state = self.gru(x, state)
        return self.head(y).view(B, T, N_VOICES, self.config.per_voice), state


def loss_terms(logits: torch.Tensor, hits: torch.Tensor, vel_bin: torch.Tensor, off_bin: torch.Tensor,
               mask: torch.Tensor, config: DrumConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(hit BCE per cell, velocity CE per hit, offset CE per hit), masked means."""
    vb, ob = config.velocity_bins, config.offset_bins
    hit_logit = logits[..., 0]
    bce = nn.functional.binary_cross_entropy_with_logits(hit_logit, hits.float(), reduction="none")
    m = mask[..., None].float()
    hit_loss = (bce * m).sum() / (m.sum() * N_VOICES).clamp(min=1)
    on = (hits & mask[..., None]).float()
    v_ce = nn.functional.cross_entropy(logits[..., 1:1 + vb].reshape(-1, vb), vel_bin.reshape(-1), reduction="none")
    o_ce = nn.functional.cross_entropy(logits[..., 1 + vb:].reshape(-1, ob), off_bin.reshape(-1), reduction="none")
    n_on = on.sum().clamp(min=1)
    return hit_loss, (v_ce * on.reshape(-1)).sum() / n_on, (o_ce * on.reshape(-1)).sum() / n_on


def velocity_bin(v: np.ndarray, bins: int) -> np.ndarray:
    return np.clip((v * bins).astype(int), 0, bins - 1)


def offset_bin(o: np.ndarray, bins: int) -> np.ndarray:
    return np.clip(((o + 0.5) * bins).astype(int), 0, bins - 1)


@dataclass
class DrumHit:
    """One generated hit: bar, step in the bar, voice index, velocity 1-127, offset in steps (-0.5..0.5)."""

    bar: int
    step: int
    voice: int
    velocity: int
    offset: float

    @property
    def pitch(self) -> int:
        return VOICE_PITCHES[self.voice]


class DrumGenerator:
    """A loaded drum checkpoint; `generate()` writes hits for a clip's bars."""

    def __init__(self, model: DrumModel, record: dict) -> None:
        self.model = model.eval()
        self.config = model.config
        self.record = record

    @classmethod
    def load(cls, path: str | Path) -> DrumGenerator:
        blob = torch.load(str(path), map_location="cpu", weights_only=False)
        cfg = dict(blob["config"])
        cfg["genres"] = tuple(cfg["genres"])
        model = DrumModel(DrumConfig(**cfg))
        model.load_state_dict({k: v.float() for k, v in blob["state"].items()})
        return cls(model, blob.get("record", {}))

    def genre_index(self, genre: str | None) -> int:
        """The genre's conditioning index; an unknown genre or None gets the model's 'no genre'."""
        genres = self.config.genres
        return genres.index(genre) if genre in genres else len(genres)

    def generate(self, bar_steps: list[int], genre: str | None, tempo: float, fill: list[bool],
                 phrase_start: list[bool], seed: int, temperature: float = 1.0, guidance: float = 1.0,
                 rules: np.ndarray | None = None, density: list[float] | None = None,
                 crash: list[bool] | None = None, accent_velocity: int = 100,
                 time_keeper: int | None = None) -> list[DrumHit]:
        """Hits for bars of the given lengths (16th steps each), sampled step by step.

        ``temperature`` sharpens (below 1) or flattens the hit probabilities only; velocity and
        timing are always sampled as learned. ``guidance`` > 1 pushes the hit logits away from the
        model's 'no genre' prediction toward the genre's (classifier-free guidance: the model was
        trained with the genre dropped 10% of the time, so it knows both); 1 is the genre's alone.

        Constrained decoding, so style rules and the form shape what the model plays while the GRU
        hears (and continues from) every hit it is made to play:
        ``rules`` (16 positions of a 4/4 bar, 9 voices): FREE, NEVER, ALWAYS or ACCENT (a hit at least
        ``accent_velocity`` loud; an ALWAYS hit takes the model's velocity), applied by each step's 4/4
        position in every bar that is not a fill; or (bars, 16, 9), one grid per bar, applied as given
        (fill bars too: a clave that runs through the clip). ``time_keeper`` (a voice: the ride in
        jazz) is where the model's hi-hat strokes are played: a hat it samples where the rules ask for
        none sounds (and is heard by the GRU) on that voice instead, with that voice's learned velocity
        and timing, and the primer is one of the genre's grooves kept on that voice. ``density`` per bar
        is added to the hit logits of the voices the rules leave free (positive: busier). ``crash`` per
        bar puts an accented crash and kick on the bar's downbeat (no kick where the rules keep the
        downbeat empty).

        Runs the GRU in numpy (`_Stepper`, the same arithmetic as torch's GRU): one step of a
        batch of one is dominated by call overhead in torch, ten times less in numpy.
        """
        cfg = self.config
        rng = np.random.default_rng(seed)
        feats = step_features(bar_steps, np.array(fill), np.array(phrase_start))
        bar_of = np.repeat(np.arange(len(bar_steps)), bar_steps)
        step_in_bar = np.concatenate([np.arange(s) for s in bar_steps]) if bar_steps else np.zeros(0, int)
        stepper = self._stepper()
        g = self.genre_index(genre)
        tempo = self.heard_tempo(genre, tempo)
        event = np.zeros(3 * N_VOICES, np.float32)
        guided = guidance != 1.0 and g != len(cfg.genres)
        conds_of = [g, len(cfg.genres)] if guided else [g]  # guided: a second row for the 'no genre' prediction
        state = stepper.initial_state(len(conds_of))  # this call's own: the generator is shared between requests
        primer = self.primer(genre, rng, time_keeper)
        if primer is not None:  # play the primer through the GRU (its hits are not written)
            steps = len(primer) // POSITIONS
            pfeats = step_features([POSITIONS] * steps, np.zeros(steps), np.zeros(steps))
            pconds = np.stack([stepper.condition(pfeats, tempo, c) for c in conds_of], axis=1)
            for i in range(len(primer)):
                stepper.step(event, pconds[i], state)
                event = primer[i]
        conds = np.stack([stepper.condition(feats, tempo, c) for c in conds_of], axis=1)  # (steps, rows, H)
        pos_of = np.concatenate([positions(s)[0] for s in bar_steps]) if bar_steps else np.zeros(0, int)
        vb = cfg.velocity_bins
        v_centres = (np.arange(vb) + 0.5) / vb
        o_centres = (np.arange(cfg.offset_bins) + 0.5) / cfg.offset_bins - 0.5
        hits: list[DrumHit] = []
        for i in range(len(feats)):
            if step_in_bar[i] == 0:
                check_stop(f"drumming bar {bar_of[i] + 1}")  # the request may have been given up
            outs = stepper.step(event, conds[i], state).astype(np.float64)
            out = outs[0]
            logit = out[:, 0] if not guided else outs[1][:, 0] + guidance * (out[:, 0] - outs[1][:, 0])
            bar = int(bar_of[i])
            if rules is not None and rules.ndim == 3:
                rule = rules[bar, pos_of[i]]
            else:
                rule = rules[pos_of[i]] if rules is not None and not fill[bar] else np.full(N_VOICES, FREE)
            if density is not None:
                logit = logit + density[bar] * (rule == FREE)
            p_hit = 1.0 / (1.0 + np.exp(-logit / temperature))
            on = rng.random(N_VOICES) < p_hit
            if time_keeper is not None:  # the stick's hat strokes played on the style's time keeper
                stick = on[list(HATS)] & (rule[list(HATS)] < ALWAYS)
                on[list(HATS)] &= ~stick
                on[time_keeper] |= bool(stick.any())
            on = np.where(rule == FREE, on, rule >= ALWAYS)
            accent = rule == ACCENT
            if crash is not None and crash[bar] and step_in_bar[i] == 0:
                on[CRASH] = accent[CRASH] = True
                if rule[0] != NEVER:  # a kick with it, unless the style keeps the downbeat empty
                    on[0] = accent[0] = True
            event = np.zeros(3 * N_VOICES, np.float32)
            for v in np.flatnonzero(on):
                vb_i = _sample(out[v, 1:1 + vb], rng)
                ob_i = _sample(out[v, 1 + vb:], rng)
                vel = min(max(v_centres[vb_i] + (rng.random() - 0.5) / vb, 1 / 127), 1.0)
                if accent[v]:
                    vel = max(vel, accent_velocity / 127)
                off = min(max(o_centres[ob_i] + (rng.random() - 0.5) / cfg.offset_bins, -0.5), 0.4999)
                event[v], event[N_VOICES + v], event[2 * N_VOICES + v] = 1.0, vel, off
                hits.append(DrumHit(int(bar_of[i]), int(step_in_bar[i]), int(v), max(1, round(vel * 127)), float(off)))
        return hits

    def heard_tempo(self, genre: str | None, tempo: float) -> float:
        """The tempo the model is conditioned on: the clip's, held inside the range the genre's drummers
        played in training (a 190 BPM salsa is played as the fastest latin groove Groove has, not as
        something no drummer showed it); the hits are still written at the clip's own tempo."""
        lo, hi = self.record.get("genre_tempo", {}).get(genre, (tempo, tempo))
        return float(min(max(tempo, lo), hi))

    def primer(self, genre: str | None, rng: np.random.Generator, time_keeper: int | None = None) -> np.ndarray | None:
        """A real groove of the genre (2 bars from a Groove training recording, stored in the checkpoint)
        that the GRU hears before the clip, so it starts inside a groove instead of from silence;
        None when the checkpoint has no primers. With ``time_keeper``, one of the genre's grooves whose
        most struck cymbal is that voice (a jazz ride groove, not Groove's jazz-march or fusion
        grooves on the hi-hat), if the genre has any."""
        primers = self.record.get("primers")
        if not primers:
            return None
        pool = primers.get(genre) or [p for group in primers.values() for p in group]
        if time_keeper is not None:
            pool = [p for p in pool if keeper_of(np.asarray(p)) == time_keeper] or pool
        return np.asarray(pool[int(rng.integers(len(pool)))], np.float32)

    def _stepper(self) -> _Stepper:
        if not hasattr(self, "_numpy"):
            self._numpy = _Stepper(self.model)
        return self._numpy


class _Stepper:
    """The model's weights as numpy arrays, stepped one 16th at a time; the GRU state is the caller's."""

    def __init__(self, model: DrumModel) -> None:
        sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
        cfg = model.config
        self.config = cfg
        e = 3 * N_VOICES
        self.w_event = sd["inp.weight"][:, :e]           # (H, 27)
        self.w_cond = sd["inp.weight"][:, e:]            # (H, 18 + 1 + genre_dim)
        self.b_inp = sd["inp.bias"]
        self.genre = sd["genre.weight"]
        # transposed and contiguous: x @ w_t is one fast product for a state of one row or several
        self.layers = [(np.ascontiguousarray(sd[f"gru.weight_ih_l{k}"].T),
                        np.ascontiguousarray(sd[f"gru.weight_hh_l{k}"].T),
                        sd[f"gru.bias_ih_l{k}"], sd[f"gru.bias_hh_l{k}"]) for k in range(cfg.layers)]
        self.w_head_t, self.b_head = np.ascontiguousarray(sd["head.weight"].T), sd["head.bias"]

    def initial_state(self, rows: int | None = None) -> list[np.ndarray]:
        """A zero GRU state, one vector per layer, or with ``rows`` one (rows, H) array per layer: several
        conditionings stepped together (one matrix product per layer, not one per conditioning)."""
        shape = (self.config.hidden,) if rows is None else (rows, self.config.hidden)
        return [np.zeros(shape, np.float32) for _ in range(self.config.layers)]

    def condition(self, feats: np.ndarray, tempo: float, genre: int) -> np.ndarray:
        """(steps, H): the input layer's part that does not depend on the previous step."""
        cfg = self.config
        t = (float(tempo) - cfg.tempo_center) / cfg.tempo_scale
        rest = np.concatenate([np.full((len(feats), 1), t, np.float32),
                               np.repeat(self.genre[genre][None, :], len(feats), axis=0)], axis=1)
        return np.concatenate([feats, rest], axis=1) @ self.w_cond.T + self.b_inp

    def step(self, event: np.ndarray, cond: np.ndarray, state: list[np.ndarray]) -> np.ndarray:
        """Logits (9, per_voice) for the next step, given the previous step's event; updates ``state``.
        With ``cond`` (rows, H) and a state of ``rows`` (initial_state(rows)): logits (rows, 9, per_voice)."""
        x = np.maximum(cond + self.w_event @ event, 0.0)
        H = self.config.hidden
        for k, (w_ih_t, w_hh_t, b_ih, b_hh) in enumerate(self.layers):
            h = state[k]
            gi = x @ w_ih_t + b_ih
            gh = h @ w_hh_t + b_hh
            r = 1.0 / (1.0 + np.exp(-(gi[..., :H] + gh[..., :H])))
            z = 1.0 / (1.0 + np.exp(-(gi[..., H:2 * H] + gh[..., H:2 * H])))
            n = np.tanh(gi[..., 2 * H:] + r * gh[..., 2 * H:])
            x = state[k] = (1.0 - z) * n + z * h
        return (x @ self.w_head_t + self.b_head).reshape(*x.shape[:-1], N_VOICES, self.config.per_voice)


def keeper_of(events: np.ndarray) -> int:
    """The time keeper of a groove given as steps of (hit, velocity, offset) per voice: the cymbal (closed or
    open hi-hat, ride) it strikes most."""
    counts = (np.asarray(events)[:, list(CYMBALS)] > 0.5).sum(axis=0)
    return CYMBALS[int(np.argmax(counts))]


def _sample(logits: np.ndarray, rng: np.random.Generator) -> int:
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return int(rng.choice(len(p), p=p))


def default_checkpoint() -> Path:
    """The committed drum checkpoint inside the package."""
    return Path(str(resources.files("engine.model").joinpath("checkpoints", CHECKPOINT_NAME)))


@lru_cache(maxsize=2)
def load_default(path: str | None = None) -> DrumGenerator:
    """The drum generator, loaded once per process."""
    return DrumGenerator.load(path or default_checkpoint())


def config_dict(config: DrumConfig) -> dict:
    """The config as stored in a checkpoint."""
    data = asdict(config)
    data["genres"] = list(config.genres)
    return data
