"""Constrained decoding: what was asked holds by construction, whatever the model prefers.

At every step the grammar below knows where in the REMI stream it is (after a Bar, a
Position, a Program, a Pitch, a Duration) and allows only tokens that keep the request:

- exactly ``bars`` Bar tokens, then EOS; every Bar followed by the asked meter's TimeSig;
- positions strictly increasing inside the bar, on the meter's grid (a 16th-note grid for
  quarter- and eighth-note meters, so 5/8 and 7/8 work the same way as 4/4);
- only the asked voice slots, each monophonic (a slot is free again when its note ends), and
  every asked voice sounds in every bar (an asked part never falls silent for a whole bar);
- pitches in the slot's range (the instrument's playable range and the voice's register)
  and in the key's scale (plus the leading tone in minor); where the style allows chromatic
  notes, they come only off the beat and last at most half a beat (passing and neighbour
  notes), so the key still holds on every beat;
- no duration that runs past the clip's last bar line;
- where ``max_rest_quarters`` is set, no silence of all voices together longer than that
  inside the clip (real music almost never stops for a whole beat: 0.7% of beats in the
  first reference set, 0.4% in the held-out works; the small model, in sparse styles and odd meters, left holes);
- phrase ends that breathe (``phrase_ends``, from the form: engine/compose/form.py): in a phrase's
  last bar the melody voice arrives on a long note. The note sounding at the bar's middle beat group
  (the third beat of 4/4, the second of 3/4, the second dotted quarter of 6/8) is held to the bar's
  end: a note begun before it either ends by then or is held through, none begins after it. Where
  the clip closes (the cadence below), the note sounding from the downbeat is held the whole bar. The
  corpus the model learned from marks these cadences with fermatas and long notes the small model
  does not write on its own (its chorale soprano ran in quarters through every phrase end);
- motifs that return (``returns``, from the form): in a bar the form brings back, the melody voice
  plays the onsets and lengths of the named bar (a section's opening), or of its head up to the bar's
  middle beat group (the motif varied inside a phrase, the model choosing the tail), and the model
  chooses every pitch anew over the bar's chord; the other voices move freely;
- a closing cadence (unless turned off, as for a continuation that goes on): in the last bar
  the bass voice plays the tonic and the melody voice tones of the tonic triad, the inner
  voices tonic-triad tones on the beats; the bar before it opens on the dominant triad, so the
  clip ends V-I;
- an opening that states the key (unless the clip continues an input): the beats of the first
  bar are tonic-triad tones, and a bass voice sounding on the first downbeat plays the tonic;
- and, softer than a mask, a logit bias toward chord tones on strong beats (the starts of the
  meter's beat groups: every beat of 4/4, the dotted quarters of 6/8) (``[decoding]`` in
  engine/catalog/data/model.toml). Without a harmonic plan the chord is the tonic triad: real music
  returns to its tonic on strong beats, which is how a listener (and a Krumhansl key finder)
  hears the key, and the model trained on short windows of transposed music often drifts to
  the dominant or the relative key. With a plan (one chord per bar, from the style's
  progressions: engine/compose/pipeline.py) the pull follows the bar's chord, so the middle of the clip
  moves through ii, iii, IV, V, vi as the style does, while the opening and the cadence above
  still state the key.

Everything else (tempo, dynamics arc, swing) is written outside the model, exactly.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.config import TICKS_PER_QUARTER
from engine.model.tokens import POSITIONS_PER_BEAT, SLOTS, Vocab
from engine.music.notes import GridNote
from engine.music.theory import Key, Meter

MAX_NOTES_PER_VOICE_PER_BAR = 16  # ... at least; a longer bar than 4/4 allows as many per quarter (7/4: 28)
MAX_NOTES_PER_VOICE_PER_QUARTER = 4
NEG_INF = float("-inf")


def allowed_pitch_classes(key: Key, chromatic: bool) -> frozenset[int]:
    """Pitch classes a clip in ``key`` may use: the scale (minor adds its leading tone)."""
    if chromatic:
        return frozenset(range(12))
    pcs = set(key.scale_pcs())
    if key.mode == "minor":
        pcs.add((key.tonic_pc + 11) % 12)  # harmonic minor's raised seventh
    return frozenset(pcs)


def meter_grid(meter: Meter) -> tuple[int, int, int]:
    """(ticks per MidiTok position, positions per bar, grid step in positions) for a meter.

    The grid is a 16th note, or the beat when the beat is shorter (N/16, N/32).
    """
    beat_ticks = meter.beat_ticks()
    ticks_per_position = beat_ticks // POSITIONS_PER_BEAT
    step_ticks = min(TICKS_PER_QUARTER // 4, beat_ticks)
    return ticks_per_position, meter.numerator * POSITIONS_PER_BEAT, max(1, step_ticks // ticks_per_position)


@dataclass(frozen=True)
class Constraints:
    """What the decoded clip must satisfy."""

    key: Key
    meter: Meter
    bars: int
    voices: dict[int, tuple[int, int]]  # slot -> (lowest, highest) MIDI pitch, inclusive
    chromatic: bool = False
    cadence: bool = True  # the last bar closes home: bass on the tonic, melody on tonic-triad tones
    opening: bool = True  # the first bar states the key: tonic chord on the beats, tonic in the bass
    tonic_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)  # logits added on strong beats to the
    # tonic chord's root, third and fifth (the third carries the mode; the fifth is shared with V)
    chord_plan: tuple[tuple[int, int, int], ...] = ()  # per bar, (root, third, fifth) pitch classes the
    # strong-beat pull leans to instead of the tonic triad (with the same three logits); () = tonic
    plan_tonic_share: float = 0.0  # with a plan, this share of the tonic pull is added to the chord's
    chords_strict: bool = False  # the plan is the user's: strong-beat notes are its chord tones (the lowest
    # voice's downbeat its root), and no opening or cadence of the key's own overrides it
    repeat_penalty: float = 0.0  # logits taken, per earlier occurrence, from the pitch classes a voice
    repeat_window: int = 4       # played in its last this-many notes: lines move through the scale
    max_rest_quarters: float = 0.0  # the longest silence of all voices together inside the clip (0: any)
    max_lead_quarters: float = 0.0  # the latest the first note may start (0: any): a clip whose tune waits
    # most of a bar (the corpus's jigs open with a pickup) sounds like a late entry, in each return of it too
    syncopation: float = 0.0  # logits added to onsets off the beat (a style's rhythm feel: ragtime's
    # 16th-note syncopations and notes tied over the beat); 0 leaves the model's own rhythm
    phrase_ends: frozenset[int] = frozenset()  # bars (from 0) that end a phrase: the melody voice (slot 0)
    # arrives on a long note there (module docstring)
    returns: tuple[tuple[int, int, bool], ...] = ()  # (bar, earlier bar, whole), bars from 0: the melody voice
    # plays the earlier bar's rhythm again, the pitches anew: the whole bar's, or its head (up to the bar's
    # middle beat group) with a new tail


@dataclass
class Grammar:
    """The REMI grammar state and the mask of tokens allowed next."""

    vocab: Vocab
    constraints: Constraints
    phase: str = "start"  # start, bar, timesig, position, program, pitch, duration, done
    bars_started: int = 0
    position: int = -1
    slot: int = -1
    pitch: int = -1
    pitch_token: int = -1
    used_at_position: set[int] = field(default_factory=set)
    busy_until: dict[int, int] = field(default_factory=dict)
    notes_in_bar: int = 0
    sounding: set[int] = field(default_factory=set)  # voices heard in the current bar so far
    notes: list[GridNote] = field(default_factory=list)
    motif: list[tuple[int, int]] | None = None  # in a returning bar: the melody's (position, ticks) to play
    motif_until: int = 0  # ... before this position (the melody is free from it)

    def __post_init__(self) -> None:
        v, c = self.vocab, self.constraints
        size = v.size
        self.ticks_per_position, self.positions_per_bar, self.grid = meter_grid(c.meter)
        self.bar_ticks = self.ticks_per_position * self.positions_per_bar
        self.clip_ticks = self.bar_ticks * c.bars
        self.beat_ticks = c.meter.beat_ticks()
        self.timesig = v.time_signature(c.meter)
        self._only = {}
        for name, token in (("bar", v.bar), ("eos", v.eos), ("timesig", self.timesig)):
            mask = torch.zeros(size, dtype=torch.bool)
            mask[token] = True
            self._only[name] = mask
        position_of = torch.as_tensor(v.position_of)
        on_grid = (position_of >= 0) & (position_of < self.positions_per_bar) & (position_of % self.grid == 0)
        self._position_of = position_of
        self._positions_on_grid = on_grid
        off_beat = on_grid & (position_of % POSITIONS_PER_BEAT != 0)
        self._syncopation = c.syncopation * off_beat.float() if c.syncopation else None
        program_of = torch.as_tensor(v.program_of)
        self._program = {s: program_of == s for s in range(SLOTS)}
        pitch_of = torch.as_tensor(v.pitch_of)
        scale_pcs = torch.tensor(sorted(allowed_pitch_classes(c.key, chromatic=False)))
        in_key = (pitch_of >= 0) & torch.isin(pitch_of % 12, scale_pcs)
        self._in_key = in_key
        self._pitch, self._final_pitch, self._passing = {}, {}, {}
        tonic = c.key.tonic_pc
        scale = c.key.scale_pcs()
        third = scale[2]
        fifth = scale[4]
        home = {0: torch.tensor([tonic, third, fifth]), 3: torch.tensor([tonic])}
        triad = torch.isin(pitch_of % 12, torch.tensor([tonic, third, fifth])) & (pitch_of >= 0)
        tonic_only = (pitch_of % 12 == tonic) & (pitch_of >= 0)
        # The dominant triad from the scale; in minor it is major, as in common-practice cadences:
        # its third is the leading tone (harmonic minor), which is what makes a minor key heard.
        # Other modes keep their own (dorian's v, mixolydian's v).
        leading = (tonic + 11) % 12 if c.key.mode == "minor" else scale[6]
        dominant = torch.isin(pitch_of % 12, torch.tensor([fifth, leading, scale[1]])) & (pitch_of >= 0)
        dominant_root = (pitch_of % 12 == fifth) & (pitch_of >= 0)
        self._triad: dict[int, torch.Tensor] = {}
        self._bass_tonic: dict[int, torch.Tensor] = {}
        self._dominant: dict[int, torch.Tensor] = {}
        self._bass_dominant: dict[int, torch.Tensor] = {}
        self._pitch_of = pitch_of
        self._pc_mask = [((pitch_of % 12 == pc) & (pitch_of >= 0)).float() for pc in range(12)]
        self._recent: dict[int, list[int]] = {slot: [] for slot in c.voices}  # pitch classes, newest last
        self._strong_bias = self._chord_bias((tonic, third, fifth))
        # The planned chord's pull plus part of the tonic's: tones the bar's chord shares with the
        # tonic triad weigh most, so the key is still heard while the harmony moves.
        self._bar_bias = [self._chord_bias(chord) + c.plan_tonic_share * self._strong_bias for chord in c.chord_plan]
        self._strong = frozenset(beat * POSITIONS_PER_BEAT for beat in c.meter.group_starts)
        # where a phrase-end bar's long note sounds from at the latest: the last beat group by the bar's middle
        self.arrival = max((s for s in self._strong if s <= self.positions_per_bar // 2), default=0)
        self._bar_tones = [torch.isin(pitch_of % 12, torch.tensor(chord)) & (pitch_of >= 0) for chord in c.chord_plan]
        self._bar_roots = [(pitch_of % 12 == chord[0]) & (pitch_of >= 0) for chord in c.chord_plan]
        for slot, (low, high) in c.voices.items():
            mask = in_key & (pitch_of >= low) & (pitch_of <= high)
            if not bool(mask.any()):
                raise ValueError(f"voice {slot} has no pitch of {c.key} between {low} and {high}")
            self._pitch[slot] = mask
            self._passing[slot] = (pitch_of >= low) & (pitch_of <= high) if c.chromatic else mask
            closing = c.cadence and c.bars >= 2 and slot in home
            final = mask & torch.isin(pitch_of % 12, home[slot]) if closing else mask
            self._final_pitch[slot] = final if bool(final.any()) else mask
            self._triad[slot] = mask & triad
            self._bass_tonic[slot] = mask & tonic_only
            self._dominant[slot] = mask & dominant
            self._bass_dominant[slot] = mask & dominant_root
        step_ticks = self.grid * self.ticks_per_position
        duration_ticks = torch.as_tensor(np.round(v.duration_beats * self.beat_ticks)).long()
        self._duration_ticks = duration_ticks
        self._durations = (duration_ticks > 0) & (duration_ticks % step_ticks == 0)
        self.busy_until = dict.fromkeys(c.voices, 0)
        self._returns = {bar: (source, whole) for bar, source, whole in c.returns} if 0 in c.voices else {}
        per_voice = max(MAX_NOTES_PER_VOICE_PER_BAR,
                        round(MAX_NOTES_PER_VOICE_PER_QUARTER * self.bar_ticks / TICKS_PER_QUARTER))
        self._max_notes = per_voice * len(c.voices)

    def _chord_bias(self, chord: tuple[int, int, int]) -> torch.Tensor:
        """Logits (vocab,) adding the bias to pitches of the chord's root, third and fifth."""
        bias = torch.zeros(self.vocab.size)
        for pc, logit in zip(chord, self.constraints.tonic_bias, strict=True):
            bias[(self._pitch_of % 12 == pc) & (self._pitch_of >= 0)] = logit
        return bias

    # -- where we are ---------------------------------------------------------------------
    def _bar_start(self) -> int:
        return (self.bars_started - 1) * self.bar_ticks

    def _tick(self) -> int:
        return self._bar_start() + self.position * self.ticks_per_position

    def _free_slots(self, tick: int) -> list[int]:
        return [s for s in self.constraints.voices if s not in self.used_at_position and self.busy_until[s] <= tick]

    def _later_positions(self) -> torch.Tensor:
        """Grid positions after the current one at which some voice is free."""
        earliest = min(self.busy_until.values())
        first = max(self.position + 1, -(-(earliest - self._bar_start()) // self.ticks_per_position))
        return self._positions_on_grid & (self._position_of >= first)

    def _rest_ends(self) -> int | None:
        """The latest tick the next onset may come at: the first within ``max_lead_quarters`` of the clip's
        start, then all voices silent for at most ``max_rest_quarters`` after the last note ends (None: no limit)."""
        if not self.notes and self.constraints.max_lead_quarters:
            lead = round(self.constraints.max_lead_quarters * TICKS_PER_QUARTER)
            rest = round(self.constraints.max_rest_quarters * TICKS_PER_QUARTER)
            return min(lead, rest) if rest else lead
        if not self.constraints.max_rest_quarters:
            return None
        return max(self.busy_until.values()) + round(self.constraints.max_rest_quarters * TICKS_PER_QUARTER)

    def _cadence(self) -> bool:
        """True in a phrase's last bar while the melody voice (slot 0) is to arrive on its long note."""
        c = self.constraints
        return 0 in c.voices and self.bars_started - 1 in c.phrase_ends

    def _arrival_tick(self) -> int:
        return self._bar_start() + self._arrival() * self.ticks_per_position

    def _arrival(self) -> int:
        """Where the melody's long note sounds from at the latest in this phrase-end bar: the middle beat group,
        and in the clip's closing cadence the downbeat (the last note is held the whole bar: the piece ends,
        where a phrase only pauses)."""
        closing = self.constraints.cadence and self.bars_started == self.constraints.bars
        return 0 if closing else self.arrival

    def _awaiting_arrival(self) -> bool:
        """In a phrase-end bar, the melody has no note sounding at the arrival yet."""
        return self._cadence() and self.busy_until[0] <= self._arrival_tick()

    def _due(self) -> int | None:
        """In a returning bar, the position of the melody's next onset still to be played (one the melody
        is still holding a note over is passed by), else None."""
        for position, _ in self.motif or ():
            placed = position < self.position or (position == self.position and 0 in self.used_at_position)
            if not placed and self.busy_until[0] <= self._bar_start() + position * self.ticks_per_position:
                return position
        return None

    def _melody_may_start(self) -> bool:
        """Whether the melody voice may begin a note at the current position: not after a phrase end's
        arrival (it holds its long note), and in a returning bar only on its motif's onsets."""
        if self._cadence() and self.position > self._arrival():
            return False
        return self.motif is None or self.position >= self.motif_until or self.position == self._due()

    def _motif_positions(self, mask: torch.Tensor) -> torch.Tensor:
        """``mask`` (a choice of next position or bar line) in a returning bar: nothing passes the melody's next
        onset of the head, and before the head ends a position comes only where it is due or another voice is
        free to play."""
        due = self._due()
        others = [until for slot, until in self.busy_until.items() if slot != 0]
        free_from = (min(others) - self._bar_start()) / self.ticks_per_position if others else float("inf")
        positions = mask & (self._position_of >= 0)
        programs = mask & ~positions & ~self._only["bar"] & ~self._only["eos"]
        # a position where another voice may play, or (past the motif's head) the melody too
        open_ = positions & ((self._position_of >= free_from) | (self._position_of >= self.motif_until))
        if due is not None:
            kept = programs | (open_ & (self._position_of < due)) | (positions & (self._position_of == due))
        else:
            kept = programs | open_ | (mask & (self._only["bar"] | self._only["eos"]))
        return kept if bool(kept.any()) else mask

    def _bar_or_end(self) -> torch.Tensor:
        return self._only["bar"] if self.bars_started < self.constraints.bars else self._only["eos"]

    # -- the mask -------------------------------------------------------------------------
    def allowed(self) -> torch.Tensor:
        """Boolean mask (vocab,) of the tokens allowed next."""
        phase = self.phase
        if phase == "start":
            return self._only["bar"]
        if phase == "bar":
            return self._only["timesig"]
        if phase in ("timesig", "duration"):
            mask = torch.zeros_like(self._only["bar"])
            capped = self.notes_in_bar >= self._max_notes
            if phase == "duration" and not capped:
                for slot in self._free_slots(self._tick()):
                    if slot != 0 or self._melody_may_start():
                        mask |= self._program[slot]
            rest_ends = self._rest_ends()
            if not capped:
                later = self._later_positions()
                if rest_ends is not None:  # the next onset comes before the silence grows too long
                    within = later & (self._position_of * self.ticks_per_position + self._bar_start() <= rest_ends)
                    if not bool(within.any()) and bool(later.any()):
                        # Already too long (a bar ended at its note cap): the earliest onset left, not any.
                        earliest = int(self._position_of[later].min())
                        within = later & (self._position_of == earliest)
                    later = within if bool(within.any()) else later
                mask |= later
            silent = set(self.constraints.voices) - self.sounding
            filled = rest_ends is None or self.bars_started == self.constraints.bars or \
                rest_ends >= self._bar_start() + self.bar_ticks
            if (phase == "duration" and not silent and filled) or capped or not bool(mask.any()):
                mask |= self._bar_or_end()  # the bar ends once every voice has sounded in it
            if self.motif is not None:
                return self._motif_positions(mask)
            if self._awaiting_arrival():  # a phrase end: nothing passes the arrival before the melody's long note
                waiting = mask & ~self._only["bar"] & ~self._only["eos"] & ~(self._position_of > self._arrival())
                if bool(waiting.any()):
                    return waiting
            return mask
        if phase == "position":
            mask = torch.zeros_like(self._only["bar"])
            free = self._free_slots(self._tick())
            if free != [0] and not self._melody_may_start():
                free = [s for s in free if s != 0]
            for slot in free:
                mask |= self._program[slot]
            return mask
        if phase == "program":
            on_beat = self.position % POSITIONS_PER_BEAT == 0
            if self.bars_started == self.constraints.bars:
                mask = self._final_pitch[self.slot]
            else:
                mask = (self._pitch if on_beat else self._passing)[self.slot]
            harmony = self._harmony(on_beat)
            if harmony is not None and bool((mask & harmony).any()):
                return mask & harmony
            return mask
        if phase == "pitch":
            remaining = self.clip_ticks - self._tick()
            if not self._in_key[self.pitch_token]:  # a chromatic passing note: at most half a beat
                remaining = min(remaining, self.beat_ticks // 2)
            mask = self._durations & (self._duration_ticks <= remaining)
            if self.slot == 0 and self.motif is not None:  # the motif's length at this onset
                length = dict(self.motif).get(self.position)
                same = mask & (self._duration_ticks == min(length or 0, remaining))
                if bool(same.any()):
                    return same
            if self.slot == 0 and self._cadence():  # ends by the arrival, or is the long note held to the bar's end
                ends = self._tick() + self._duration_ticks
                held = mask & ((ends <= self._arrival_tick()) | (ends == self._bar_start() + self.bar_ticks))
                if bool(held.any()):
                    return held
            return mask
        raise RuntimeError("the clip is complete; nothing may follow EOS")

    def _harmony(self, on_beat: bool) -> torch.Tensor | None:
        """The chord tones the current note must come from (the user's chords; else opening, V-I cadence), if any."""
        c, slot, bar = self.constraints, self.slot, self.bars_started
        bass = slot == max(c.voices) and len(c.voices) > 1
        downbeat = self.position == 0
        if c.chords_strict and 1 <= bar <= len(self._bar_tones):
            if bass and downbeat:
                return self._bar_roots[bar - 1]
            return self._bar_tones[bar - 1] if self.position in self._strong else None
        if c.opening and bar == 1 and on_beat:
            return self._bass_tonic[slot] if bass and downbeat else self._triad[slot]
        if c.cadence and c.bars >= 3 and bar == c.bars - 1 and downbeat:
            return self._bass_dominant[slot] if bass else self._dominant[slot]
        if c.cadence and c.bars >= 2 and bar == c.bars and on_beat:
            return self._triad[slot]
        return None

    def bias(self) -> torch.Tensor | None:
        """Logits to add before sampling the next token: the pull on strong-beat pitches toward the
        bar's planned chord (the tonic triad without a plan), and the repetition penalty on the
        pitch classes the voice has just played (a line that circles three notes is dull, and
        the small model, trained briefly, tends to); where the next onset is chosen, the style's
        lean to off-beat onsets (``syncopation``)."""
        if self.phase in ("timesig", "duration"):
            return self._syncopation
        if self.phase == "pitch":
            return self._syncopated_ends()
        if self.phase != "program":
            return None
        c = self.constraints
        bias = None
        if self.position in self._strong and any(c.tonic_bias):
            bar = self.bars_started - 1
            bias = self._bar_bias[bar] if 0 <= bar < len(self._bar_bias) else self._strong_bias
        recent = self._recent.get(self.slot, [])
        if c.repeat_penalty and recent:
            bias = bias.clone() if bias is not None else torch.zeros(self.vocab.size)
            for pc in recent:
                bias -= c.repeat_penalty * self._pc_mask[pc]
        return bias

    def _syncopated_ends(self) -> torch.Tensor | None:
        """The syncopation bias on the note's length: lengths that end it off the beat. Where rests
        are filled (``max_rest_quarters``), the note's end is where the next onset falls, so this is
        how the style's lean to off-beat onsets reaches a line that does not rest."""
        if self._syncopation is None:
            return None
        beat = POSITIONS_PER_BEAT * self.ticks_per_position
        off_beat_end = self._durations & ((self._tick() + self._duration_ticks) % beat != 0)
        return self.constraints.syncopation * off_beat_end.float()

    # -- advancing ------------------------------------------------------------------------
    def advance(self, token: int) -> None:
        """Take a token (which must be allowed) and update the state."""
        v = self.vocab
        if token == v.bar:
            self.phase, self.bars_started, self.position = "bar", self.bars_started + 1, -1
            self.used_at_position, self.notes_in_bar = set(), 0
            self.sounding = {s for s, until in self.busy_until.items() if until > self._bar_start()}
            source, whole = self._returns.get(self.bars_started - 1, (None, False))
            self.motif, self.motif_until = None, self.arrival
            if source is not None and 0 <= source < self.bars_started - 1:  # the source bar's melody, or its head
                start = source * self.bar_ticks
                self.motif_until = self.positions_per_bar if whole else self.arrival
                until = start + self.motif_until * self.ticks_per_position
                self.motif = [((n.time - start) // self.ticks_per_position,
                               n.duration if whole else min(n.duration, until - n.time))
                              for n in sorted(self.notes, key=lambda n: n.time)
                              if n.slot == 0 and start <= n.time < until] or None
        elif token == v.eos:
            self.phase = "done"
        elif token == self.timesig and self.phase == "bar":
            self.phase = "timesig"
        elif v.position_of[token] >= 0:
            self.phase, self.position, self.used_at_position = "position", int(v.position_of[token]), set()
        elif v.program_of[token] >= 0:
            self.phase, self.slot = "program", int(v.program_of[token])
            self.used_at_position.add(self.slot)
        elif v.pitch_of[token] >= 0:
            self.phase, self.pitch, self.pitch_token = "pitch", int(v.pitch_of[token]), token
        elif v.duration_beats[token] > 0:
            ticks = int(self._duration_ticks[token])
            start = self._tick()
            self.notes.append(GridNote(start, ticks, self.pitch, slot=self.slot))
            recent = self._recent.setdefault(self.slot, [])
            recent.append(self.pitch % 12)
            del recent[:-self.constraints.repeat_window]
            self.busy_until[self.slot] = start + ticks
            self.notes_in_bar += 1
            self.sounding.add(self.slot)
            self.phase = "duration"
        else:
            raise ValueError(f"token {v.names[token]!r} does not fit the grammar in phase {self.phase}")

    def melody_onsets(self, bar: int) -> frozenset[int]:
        """The positions where the melody voice (slot 0) begins notes in ``bar`` (from 0): the bar's rhythm."""
        start, end = bar * self.bar_ticks, (bar + 1) * self.bar_ticks
        return frozenset((n.time - start) // self.ticks_per_position for n in self.notes
                         if n.slot == 0 and start <= n.time < end)

    def snapshot(self) -> Grammar:
        """A copy of the state to go back to (the masks are shared: they never change)."""
        state = copy.copy(self)
        state.used_at_position, state.sounding = set(self.used_at_position), set(self.sounding)
        state.busy_until, state.notes = dict(self.busy_until), list(self.notes)
        state._recent = {slot: list(pcs) for slot, pcs in self._recent.items()}
        return state

    @property
    def done(self) -> bool:
        return self.phase == "done"


def sample(logits: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator, temperature: float,
           top_p: float) -> int:
    """Sample one allowed token: masked softmax at ``temperature``, then nucleus ``top_p``.

    The draw uses a numpy Generator, so the same seed gives the same token on any thread count.
    """
    allowed = np.flatnonzero(mask.numpy())
    scores = logits.numpy()[allowed].astype(np.float64) / temperature
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    order = np.argsort(-probs, kind="stable")
    cumulative = np.cumsum(probs[order])
    keep = order[: int(np.searchsorted(cumulative, top_p)) + 1]
    kept = probs[keep] / probs[keep].sum()
    choice = int(np.searchsorted(np.cumsum(kept), rng.random() * (1 - 1e-12), side="right"))
    return int(allowed[keep[min(choice, len(keep) - 1)]])
