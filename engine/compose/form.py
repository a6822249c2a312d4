"""Form: phrases, sections that return, cadences, and the loop mode of loop genres.

A clip is cut into phrases of 4 bars (8 from 32 bars on). Phrases get section labels: one
phrase is A, two are A A, three A A B, four AABA or ABAB (the seed chooses), more repeat the
four. Each label has its progression from the style (A and B different where the style has
two). Outside loop mode the clip opens on the tonic (the progression is started on I), a phrase
followed by its own repeat or a B ends on V (a half cadence) and the clip closes V-I (an
authentic cadence). A style whose progression is 8 bars or more (a 12-bar blues) is itself the
form: its chords cycle through the clip and only the final cadence is set.

In loop mode (parts.toml `loop`), every phrase is A, the progression cycles as the style wrote it
(no opening I, no closing V-I), so the last bar leads back into the first. Each time round the loop
returns on its odd bars (the first and third of a phrase); its answering bars (the second and the
fourth) and the clip's last bar, a turnaround into bar 1, are played afresh (``source`` None), as a
player varies a loop: returning whole, loops recurred in 9 bars of 10 against POP909's 6. A melody
over a loop returns only the first bar of its phrase (the hook) and answers it anew
(engine/compose/learned.py).

Bars that return: the opening bar of a repeated section (two of an eight-bar phrase) names its
``source``, the same bar of the section's first statement (in a loop: see above).
Parts copy it when the chord is the same and otherwise keep its rhythm and let the model choose new
pitches over the new chord (a varied repeat); the rest of a returning section is written afresh
toward its own cadence, as an answering phrase is. (Held-out POP909 melodies repeat the rhythm of
about 4 in 10 bars of an 8-bar window; returning whole sections made the clips' melodies repeat 6 in
10.) Inside a first statement, the motif's bars return with new pitches (``motif_source``): the
third bar of a four-bar phrase takes the first bar's rhythm, bars 5-6 of an eight-bar phrase those
of 1-2. A returning section does not repeat that inner return: it opens with the motif and answers
afresh (with it, the clips' melodies recurred in 5 bars of 8 against POP909's 4 in 10).

Melody rhythm (``returns``, ``contrasts``, ``cadences``): every bar of a phrase after its first answers
the bar before it with another rhythm. Held-out POP909 melodies (8-bar windows from phrase starts, the
test split) share a bar's rhythm with the next bar 2-6 times in 100, and with the bar two or four on 11-22
times in 100 (bar 5 with bar 1 most: 22); the learned models, left alone, played one rhythm bar after
bar (a chorale soprano's running quarters, a waltz's half-and-quarter, the part model copying the bar it
had just written). How literally the motif comes back inside a phrase differs with the model that writes
the melody: the part model, whose rhythms vary, restates its rhythm whole (as above); the corpus model,
whose rhythms are few (quarters and eighths in a chorale, half-and-quarter in 3/4), keeps its head, to
the bar's middle beat group, and varies its tail, while a returning section still opens with the motif
whole (restated whole in both places, its melodies recurred in 5-7 bars of 10 against POP909's 4).
Where the corpus model writes the melody, a phrase's last bar also arrives on a long note, and the
clip's last on one held from its downbeat (engine/model/decode.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.music.analysis import Chord, diatonic_triads
from engine.music.theory import Key

LONG_FORM_BARS = 8        # a progression this long is a form of its own (12-bar blues)
EIGHT_BAR_PHRASES_FROM = 32
FORM_SEED = 7127


@dataclass(frozen=True)
class FormBar:
    """One bar's place in the form."""

    index: int
    section: str              # "A", "B"
    phrase: int               # which phrase of the clip
    position: int             # bar inside its phrase
    chord: Chord
    source: int | None        # the bar of the section's first statement this bar repeats
    motif_source: int | None  # a bar inside the same statement whose rhythm this one takes
    phrase_end: bool


@dataclass(frozen=True)
class Form:
    bars: tuple[FormBar, ...]
    labels: str               # one letter per phrase, e.g. "AABA"
    loop: bool

    @property
    def chords(self) -> list[Chord]:
        return [bar.chord for bar in self.bars]

    @property
    def returns(self) -> tuple[tuple[int, int, bool], ...]:
        """(bar, earlier bar, whole) for each bar that brings an earlier bar back: a returning section's opening
        (``source``), whole, and the motif inside a first statement (``motif_source``), varied; never a phrase
        end."""
        return tuple((bar.index, bar.source, True) if bar.source is not None else (bar.index, bar.motif_source, False)
                     for bar in self.bars
                     if (bar.source is not None or bar.motif_source is not None) and not bar.phrase_end)

    @property
    def contrasts(self) -> tuple[tuple[int, int], ...]:
        """(bar, earlier bar) pairs whose melody rhythms are to differ: every bar of a phrase after its first
        and the bar before it, and a varied motif and the bar it varies (module docstring). A phrase's first
        bar may repeat the bar before (the motif returning after a cadence)."""
        pairs = [(bar.index, bar.index - 1) for bar in self.bars if bar.position > 0]
        pairs += [(bar, source) for bar, source, whole in self.returns if not whole]
        return tuple(pairs)

    @property
    def cadences(self) -> tuple[int, ...]:
        """The bars where a phrase ends and its melody arrives on a long note: every phrase's last bar, but
        a loop's last, which turns round into its first."""
        last = len(self.bars) - 1
        return tuple(bar.index for bar in self.bars if bar.phrase_end and not (self.loop and bar.index == last))


def phrase_length(bars: int) -> int:
    return 8 if bars >= EIGHT_BAR_PHRASES_FROM else 4


def section_labels(phrases: int, loop: bool, seed: int) -> str:
    """One label per phrase (see the module docstring)."""
    if loop:
        return "A" * phrases
    if phrases <= 3:
        return "AAB"[:phrases]
    four = "AABA" if np.random.default_rng([seed, FORM_SEED]).random() < 0.6 else "ABAB"
    return (four * ((phrases + 3) // 4))[:phrases]


def _triads(key: Key) -> list[Chord]:
    triads = diatonic_triads(key)[:7]
    if key.mode == "minor":
        triads[4] = diatonic_triads(key)[7]  # harmonic minor's V: its third is the leading tone
    return triads


# A diminished triad on a planned degree is played as the chord of the same function that is not.
DIMINISHED_STAND_IN = {1: 6, 2: 4, 3: 1, 4: 2, 5: 3, 6: 4, 7: 5}


def _chord(triads: list[Chord], degree: int) -> Chord:
    chord = triads[degree - 1]
    if chord.quality == "dim":
        chord = triads[DIMINISHED_STAND_IN[chord.degree] - 1]
    return chord


def plan(bars: int, key: Key, progressions: list[tuple[int, ...]], seed: int, loop: bool) -> Form:
    """The clip's form (module docstring): sections, chords per bar, repeats, cadences."""
    if bars < 1:
        raise ValueError(f"a form needs at least 1 bar, got {bars}")
    if not progressions:
        raise ValueError("a form needs at least one progression")
    rng = np.random.default_rng([seed, FORM_SEED + 1])
    order = rng.permutation(len(progressions))
    prog_a = list(progressions[int(order[0])])
    prog_b = list(progressions[int(order[1])]) if len(order) > 1 else prog_a[len(prog_a) // 2:] + prog_a[
        : len(prog_a) // 2]
    if not loop:
        for prog in (prog_a, prog_b):
            if 1 in prog and prog is prog_a:
                start = prog.index(1)
                prog[:] = prog[start:] + prog[:start]
    plen = phrase_length(bars)
    phrases = (bars + plen - 1) // plen
    labels = section_labels(phrases, loop, seed)
    long_form = len(prog_a) >= LONG_FORM_BARS
    triads = _triads(key)
    degrees = []
    for bar in range(bars):
        phrase, position = divmod(bar, plen)
        if long_form:
            degrees.append(prog_a[bar % len(prog_a)])
        else:
            prog = prog_a if labels[phrase] == "A" else prog_b
            degrees.append(prog[position % len(prog)])
    if not loop:
        if not long_form:
            for phrase in range(phrases - 1):
                end = min(bars, (phrase + 1) * plen) - 1
                if plen >= 4 and labels[phrase + 1] in ("A", "B"):
                    degrees[end] = 5  # a half cadence before the next phrase
        degrees[0] = 1
        degrees[-1] = 1
        if bars >= 3:
            degrees[-2] = 5
    first_of: dict[str, int] = {}
    out = []
    for bar in range(bars):
        phrase, position = divmod(bar, plen)
        label = labels[phrase]
        first_of.setdefault(label, phrase)
        first = first_of[label]
        kept = plen if loop else plen // 4  # a section returns by its opening (the motif); a loop returns whole
        source = first * plen + position if first != phrase and position < kept else None
        if source is not None and (source >= bars or (loop and (position % 2 or bar == bars - 1))):
            source = None  # a loop's answering bars are played afresh each time round, its last into bar 1
        motif = None
        if first == phrase:  # inside a first statement only: a returning section's answer is new
            if plen == 4 and position == 2:
                motif = phrase * plen
            elif plen == 8 and position in (4, 5):
                motif = phrase * plen + position - 4
        end = position == plen - 1 or bar == bars - 1
        out.append(FormBar(bar, label, phrase, position, _chord(triads, degrees[bar]), source, motif, end))
    return Form(tuple(out), labels, loop)
