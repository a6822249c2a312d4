"""Pitched parts written by the learned part model over the form's chords.

compose asks here for every melody, bass, comping, keys and pad part it does not give to the
music21-corpus model. The part model (engine/partmodel.py) writes each bar from the chord, the
bar's place in its phrase, the key's mode, the meter and the energy, continuing the part's
earlier bars. The form (engine/form.py) decides which bars return: a bar whose source has the
same chord is copied, one over another chord keeps the source's rhythm and gets new pitches, and
the melody's motif returns inside a phrase with its rhythm and new pitches.

What the style keeps (engine/catalog/data/parts.toml): the idiomatic rhythm of a bass or comping part
(``bass_rhythm``/``comp_rhythm`` = "style"); the model still chooses each note's pitch and velocity.
A pad holds the pitches of the model's comping to the end of each bar.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources

from engine.config import ANSWER_REDRAWS
from engine.errors import check_stop
from engine.music.analysis import Chord
from engine.music.chords import ChordSymbol

ROLE_OF = {"melody": "melody", "bass": "bass", "chords": "comp", "keys": "comp", "pad": "comp"}
# The parts (spec roles) that, in a band, keep their idiom through the first half of a phrase's last
# bar and fill only the second: a bass keeps driving, comping keeps its stabs. A melody's phrase end,
# and a part playing alone (whose free bar keeps every beat sounding), are all the model's.
HALF_BAR_FILLS = ("bass", "chords", "keys")
ENERGY_BANDS = 4
SETTINGS_KEYS = {"bass_rhythm": ("learned", "style"), "comp_rhythm": ("learned", "style"),
                 "loop": (True, False), "corpus": (True, False)}


@dataclass(frozen=True)
class PartSettings:
    """A style's entry in parts.toml."""

    bass_rhythm: str = "learned"
    comp_rhythm: str = "learned"
    loop: bool = False
    corpus: bool = False


@lru_cache(maxsize=1)
def _table() -> dict:
    return tomllib.loads(resources.files("engine.catalog.data").joinpath("parts.toml").read_text())


def settings(style: str) -> PartSettings:
    """The style's part settings (parts.toml), over [default]; a bad value names the accepted ones."""
    table = _table()
    merged = dict(table["default"])
    merged.update(table.get("style", {}).get(style, {}))
    for name, value in merged.items():
        if name not in SETTINGS_KEYS:
            raise ValueError(f"parts.toml: style {style!r} has unknown setting {name!r}; accepted: "
                             f"{', '.join(SETTINGS_KEYS)}")
        if value not in SETTINGS_KEYS[name]:
            raise ValueError(f"parts.toml: style {style!r} has {name} = {value!r}; accepted: "
                             f"{', '.join(map(str, SETTINGS_KEYS[name]))}")
    return PartSettings(**merged)


def chord_for_model(chord: Chord | ChordSymbol, tonic_pc: int) -> tuple[int, str]:
    """A planned triad, or a chord the user named, as the model names chords: (root relative to the
    tonic, quality: maj, min, dim, aug or sus)."""
    if isinstance(chord, ChordSymbol):
        third, fifth = chord.intervals[1:3] if len(chord.intervals) >= 3 else (4, 7)
        quality = ("sus" if third in (2, 5) else "dim" if (third, fifth) == (3, 6) else
                   "aug" if (third, fifth) == (4, 8) else "min" if third == 3 else "maj")
    else:
        quality = {"": "maj", "m": "min", "dim": "dim"}.get(chord.quality, "maj")
    return (chord.root_pc - tonic_pc) % 12, quality


def energy_band(energy: float) -> int:
    return min(ENERGY_BANDS - 1, max(0, int(energy * ENERGY_BANDS)))


@dataclass
class Provenance:
    """Who wrote a draft's notes, counted per kind and per part.

    ``learned``: pitch, onset, length and velocity chosen by a learned model; ``style_rhythm``:
    onset and length from the style's idiom, pitch and velocity by the part model (a percussion
    part's idiom bars: onsets and keys from instruments.toml, velocity and timing by the drum model;
    its phrase-end fills are ``learned``); ``rules``:
    pitched notes written by rules (the stride arranger); ``drums``: the drum part (written by
    whatever compose's drum path is; the drum model is issue 15's other half).
    """

    learned: int = 0
    style_rhythm: int = 0
    rules: int = 0
    drums: int = 0
    by_part: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, part: str, kind: str, count: int) -> None:
        if kind not in ("learned", "style_rhythm", "rules", "drums"):
            raise ValueError(f"provenance kind must be learned, style_rhythm, rules or drums, got {kind!r}")
        setattr(self, kind, getattr(self, kind) + count)
        self.by_part.setdefault(part, {}).setdefault(kind, 0)
        self.by_part[part][kind] += count

    def pitched_share(self) -> float:
        """Share of the pitched notes whose pitch a learned model chose."""
        total = self.learned + self.style_rhythm + self.rules
        return (self.learned + self.style_rhythm) / total if total else 0.0

    def share(self) -> float:
        """Share of all notes a learned model wrote (the drum part is the drum model's)."""
        total = self.learned + self.style_rhythm + self.rules + self.drums
        learned = self.learned + self.style_rhythm + self.drums
        return learned / total if total else 0.0


MODEL_STEPS = 16  # the longest bar the part model writes at once (engine/model/parts.STEPS)
# Logits added to the tonic and the third of the key on the beat groups' starts, per mode: what makes
# the key heard (on every note, it pinned a jazz sax to its tonic). Without a
# pull, 11 of 69 dev-prompt clips were heard in another key (the dominant's, or the relative's:
# POP909 is mostly major, and a loop that starts away from the tonic never states it).
KEY_PULL = {"major": (2.0, 1.0), "minor": (2.5, 2.0)}
STYLE_VOICING = 3  # comping on a style's rhythm (a skank, a chop) plays chords: three notes an onset at least


def chunks(steps: int, group_starts: tuple[int, ...]) -> list[tuple[int, int]]:
    """A bar longer than the model's as pieces of at most MODEL_STEPS steps cut at beat groups:
    (first step, steps). A bar that fits is one piece."""
    if steps <= MODEL_STEPS:
        return [(0, steps)]
    pieces = -(-steps // MODEL_STEPS)
    cuts = [0]
    for k in range(1, pieces):
        ideal = k * steps / pieces
        candidates = [s for s in group_starts if cuts[-1] < s < steps and s - cuts[-1] <= MODEL_STEPS]
        cuts.append(min(candidates, key=lambda s: abs(s - ideal)) if candidates else cuts[-1] + MODEL_STEPS)
    cuts.append(steps)
    return [(a, b - a) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


@dataclass(frozen=True)
class BarNote:
    """A note of a part inside its bar (steps on the clip's grid); ``offset``: how far it is played
    from its step, in steps (the performance model's timing; 0 on the grid)."""

    step: int
    length: float
    pitch: int
    velocity: int
    offset: float = 0.0


KEYBOARD_VOICING = 4  # notes a keyboard's comping chord has at least (POP909's piano often plays two)


def full_voicing(notes: list[BarNote], tones: frozenset[int], low: int, high: int,
                 size: int = KEYBOARD_VOICING) -> list[BarNote]:
    """Each onset's chord filled to ``size`` notes with the bar's chord tones (``tones``, pitch
    classes), added below the model's top note within ``low``-``high``: a keyboard comps in full
    chords while the model keeps choosing the rhythm and the top of each voicing."""
    out = list(notes)
    for step in sorted({n.step for n in notes}):
        chord = [n for n in notes if n.step == step]
        top = max(chord, key=lambda n: n.pitch)
        have = {n.pitch for n in chord}
        pcs = {p % 12 for p in have}
        # below the top first; a voicing the range floor stops grows upwards
        for pitch in [*range(top.pitch - 1, low - 1, -1), *range(top.pitch + 1, high + 1)]:
            if len(have) >= size:
                break
            if pitch % 12 in tones and (pitch % 12 not in pcs or len(pcs) >= len(tones)):
                have.add(pitch)
                pcs.add(pitch % 12)
                out.append(BarNote(step, top.length, pitch, top.velocity))
    return out


def rhythm_of(notes: list[BarNote]) -> tuple[tuple[int, int], ...]:
    """The onsets of a bar and, per onset, its longest note: what a varied repeat keeps."""
    onsets: dict[int, int] = {}
    for n in notes:
        onsets[n.step] = max(onsets.get(n.step, 0), max(1, round(n.length)))
    return tuple(sorted(onsets.items()))


def write_part(model, *, role: str, form, key, mode: str, beats: int, steps: int,
               group_starts: tuple[int, ...], low: int, high: int, energy: float, seed: int,
               style_rhythm: tuple[tuple[int, int], ...] | None = None,
               legato: bool = False, colour: list[frozenset[int]] | None = None, moving: bool = False,
               given: list[list[BarNote]] | None = None, rewrite: set[int] | None = None,
               keep_rhythm: bool = False, half_bar_fill: bool = False,
               ) -> tuple[list[list[BarNote]], list[str]]:
    """Every bar of one part, and how each was written ("learned", or "style_rhythm": the style's
    idiom kept, except in a phrase's last bar, where the model plays a fill (over the second half only
    with ``half_bar_fill``); in the idiom's answering bars (the second of a four-bar phrase; the second,
    fourth and sixth of eight) the model plays a turn over the last beat group, as a bass player varies
    an ostinato).

    ``style_rhythm``: (step, length) onsets the style keeps in every bar (the model chooses the
    pitches); ``legato`` holds each pitch to the bar's end (a pad).

    Co-creation (engine/compose/operations.py): ``given`` is the part as it stands, one list of notes
    per form bar; only the bars in ``rewrite`` are written, the others are kept ("kept") and are the
    model's context, so a rewritten bar continues the music before it. ``keep_rhythm``: a rewritten
    bar keeps the given bar's onsets and lengths and the model chooses new pitches (a light variation).
    """
    from engine.model.parts import PlannedBar

    tonic = key.tonic_pc
    scale = set(key.scale_pcs())
    third = (tonic + (3 if mode == "minor" else 4)) % 12
    pull = tuple((pc, bias) for pc, bias in zip((tonic, third), KEY_PULL[mode], strict=True) if bias)
    band = energy_band(energy)
    bars: list[list[BarNote]] = []
    kinds: list[str] = []
    tokens: list[list[list[int]]] = []
    history: list[list[int]] = []
    model.begin_part()
    plen = max(b.position for b in form.bars) + 1
    contrasts = form.contrasts
    turn_from = group_starts[-1] if len(group_starts) > 1 else steps // 2
    fill_from = next((g for g in group_starts if g >= steps // 2), steps // 2)  # a phrase-end fill: the second half
    for fb in form.bars:
        check_stop(f"writing bar {fb.index + 1} of the {role}")  # the request may have been given up
        chord = chord_for_model(fb.chord, tonic)
        if given is not None and rewrite is not None and fb.index not in rewrite:
            bars.append(list(given[fb.index]))
            kinds.append("kept")
            tokens.append(bar_tokens([given[fb.index]], [fb], tonic_pc=tonic, steps=steps,
                                     group_starts=group_starts)[0])
            history += tokens[-1]
            continue
        source = fb.source if rewrite is None else None  # a rewrite follows the part as it stands
        if form.loop and role == "melody" and fb.position >= plen // 2:
            source = None  # over a loop the lead repeats its hook bar and answers it anew (engine/compose/form.py)
        if source is not None and form.bars[source].chord == fb.chord:
            bars.append(list(bars[source]))
            tokens.append(tokens[source])
            kinds.append(kinds[source])
            history += tokens[source]
            continue
        fill = style_rhythm is not None and fb.phrase_end and fb.index > 0
        # A phrase's last bar is the model's fill; with ``half_bar_fill`` the idiom's first half stays
        # there (HALF_BAR_FILLS) and the model fills the second. The idiom's answering bars (odd places
        # in the phrase) end with the model's turn on the last beat group.
        idiom = style_rhythm is not None and (not fill or half_bar_fill)
        turn = (fill_from if fill else turn_from if fb.position % 2 == 1 else None) if idiom else None
        kinds.append("learned" if fill else "style_rhythm" if idiom else "learned")
        if keep_rhythm and given is not None and given[fb.index]:
            rhythm, turn = rhythm_of(given[fb.index]), None
        elif idiom:
            rhythm = style_rhythm  # the idiom, except where a phrase ends: a fill there
        elif source is not None and style_rhythm is None:
            rhythm = rhythm_of(bars[source])
        elif fb.motif_source is not None and role == "melody" and rewrite is None:
            rhythm = rhythm_of(bars[fb.motif_source])
        else:
            rhythm = None
        # a melody bar the model writes freely does not play the rhythm of the bar before it inside a phrase
        # (engine/compose/form.py contrasts): drawn again if it does
        unlike = [bars[other] for bar, other in contrasts if bar == fb.index and other < len(bars)] \
            if role == "melody" and rhythm is None and rewrite is None else []
        for attempt in range(ANSWER_REDRAWS + 1):
            notes: list[BarNote] = []
            pieces: list[list[int]] = []
            for first, size in chunks(steps, group_starts):
                piece = None if rhythm is None else tuple(
                    (s - first, min(length, first + size - s)) for s, length in rhythm if first <= s < first + size)
                free = None if turn is None or turn >= first + size else max(0, turn - first)
                planned = PlannedBar(fb.position, (chord, chord), piece, size, free_from=free,
                                     prefer=colour[fb.index] if colour else frozenset(), pull=pull,
                                     strong=tuple(g - first for g in group_starts if first <= g < first + size),
                                     voicing=STYLE_VOICING if idiom and role == "comp" else 1, moving=moving,
                                     strict=isinstance(fb.chord, ChordSymbol))
                written, toks = model.write_bar(role, planned, history + pieces, mode=mode, beats=beats,
                                                energy=band, tonic_pc=tonic, scale_pcs=scale, low=low, high=high,
                                                seed=seed * 1009 + fb.index * 31 + first + attempt * 7919)
                notes += [BarNote(first + n.step, n.length, n.pitch, n.velocity) for n in written]
                pieces.append(toks)
            onsets = {n.step for n in notes}
            if not any(onsets == {n.step for n in other} for other in unlike):
                break
        history += pieces
        bars.append(tidy(notes, mono=role in ("melody", "bass")))
        tokens.append(pieces)
    if legato:
        bars = [bar if kind == "kept" else _held([bar], steps)[0] for bar, kind in zip(bars, kinds, strict=True)]
    return bars, kinds


def play(bars: list[list[BarNote]], kinds: list[str], role: str, *, steps: int, seed: int,
         quantize: bool, legato: bool = False) -> list[list[BarNote]]:
    """The part as played: the performance model (engine/model/perform.py, learned from POP909's
    players) gives every written note its velocity and, unless ``quantize``, its onset's offset from
    the grid; in the bars the part model wrote freely ("learned") it also holds each note for its
    played length (not in a pad, ``legato``; a line that plays one note at a time still stops at its
    next onset). A style idiom's bars keep the idiom's lengths; bars a co-creation keeps ("kept") stay
    as they are and are the played context."""
    from engine.model import perform

    order = sorted(((b, i) for b, notes in enumerate(bars) for i in range(len(notes))),
                   key=lambda bi: (bi[0] * steps + bars[bi[0]][bi[1]].step, bars[bi[0]][bi[1]].pitch))
    notes = [perform.PlayedNote(b * steps + bars[b][i].step, b, bars[b][i].step, bars[b][i].length,
                                bars[b][i].pitch, bars[b][i].velocity) for b, i in order]
    velocities, offsets, lengths = perform.load().play(notes, role, seed)
    out = [list(bar) for bar in bars]
    for (b, i), velocity, offset, length in zip(order, velocities, offsets, lengths, strict=True):
        if kinds[b] != "kept":
            held = length if kinds[b] == "learned" and not legato else out[b][i].length
            out[b][i] = replace(out[b][i], velocity=velocity, offset=0.0 if quantize else offset, length=held)
    if role in ("melody", "bass"):  # one note at a time: a note stops at the next onset, in its bar or the next
        starts = sorted({b * steps + n.step for b, bar in enumerate(out) for n in bar})
        following = dict(zip(starts, starts[1:], strict=False))
        for b, bar in enumerate(out):
            if kinds[b] != "kept":
                out[b] = [replace(n, length=min(n.length, following[b * steps + n.step] - b * steps - n.step))
                          if b * steps + n.step in following else n for n in bar]
    return out


def tidy(notes: list[BarNote], *, mono: bool) -> list[BarNote]:
    """A bar as it can be played: one note per pitch and onset (the longer), and in a line that plays
    one note at a time (melody, bass) each note stopped by the next onset, so a pitch struck again
    does not overlap itself."""
    longest: dict[tuple[int, int], BarNote] = {}
    for n in notes:
        kept = longest.get((n.step, n.pitch))
        if kept is None or n.length > kept.length:
            longest[(n.step, n.pitch)] = n
    out = sorted(longest.values(), key=lambda n: (n.step, n.pitch))
    if mono:
        onsets = sorted({n.step for n in out})
        following = dict(zip(onsets, onsets[1:], strict=False))
        out = [replace(n, length=min(n.length, following[n.step] - n.step)) if n.step in following else n
               for n in out]
    return out


def _held(bars: list[list[BarNote]], steps: int) -> list[list[BarNote]]:
    """A pad: every pitch the model played in a bar held from its first onset to the bar's end
    (a pitch struck again in the bar is the same held note)."""
    out = []
    for notes in bars:
        first: dict[int, BarNote] = {}
        for n in sorted(notes, key=lambda n: n.step):
            first.setdefault(n.pitch, n)
        out.append([BarNote(n.step, max(n.length, steps - n.step), n.pitch, n.velocity) for n in first.values()])
    return out


def bar_tokens(bars: list[list[BarNote]], form_bars, *, tonic_pc: int, steps: int,
               group_starts: tuple[int, ...]) -> list[list[list[int]]]:
    """The part model's tokens for written bars at their form bars (engine/compose/form.py FormBar): one
    list per piece of each bar, as write_part feeds them."""
    from engine.model.parts import encode_bar

    shift = tonic_pc if tonic_pc <= 6 else tonic_pc - 12
    out = []
    for fb, notes in zip(form_bars, bars, strict=False):
        chord = chord_for_model(fb.chord, tonic_pc)
        ordered = sorted(notes, key=lambda n: (n.step, n.pitch))
        out.append([encode_bar([BarNote(n.step - first, n.length, n.pitch - shift, n.velocity)
                                for n in ordered if first <= n.step < first + size], fb.position, (chord, chord))
                    for first, size in chunks(steps, group_starts)])
    return out
