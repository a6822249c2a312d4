"""The drum part of a clip: the learned drum model's kit (engine/model/drums.py), shaped by the
clip's form and the style's data, or the style's ensemble percussion placed by the form.

Form (engine/compose/form.py): the last bar of every phrase is a fill bar and the next bar starts
a phrase (the model's fill and phrase-start conditioning); a bar that starts a new section (the
form's label changes, or a song's first bar) opens with a crash and a kick; each bar's energy is
its section's lift (a B against its A, `DRUM_SECTION_ENERGY`), the prompt's energy and the
dynamics arc, and it makes the free voices busier or sparser (a bias on the model's hit logits)
and louder or softer. A clip without a form gets phrases of `DRUM_PHRASE_BARS`.

Style (styles.toml ``[style.drums]``, engine/catalog/styles.py `DrumStyle`): the Groove genre the
model plays (`drum_genre`); ``rules``, cells per kit voice and 4/4 position the model must play,
must not play, or chooses (metal's double kick, reggae's one drop: idioms Groove's drummers do not
teach), applied while sampling in every bar that is not a fill, so the model hears and continues
from them; ``kit = false`` for styles whose percussion is not a band's kit (a film score, a
string quartet); ``hits``, strokes the form places (a cymbal swell into a new section, a bass
drum and cymbals on a phrase's downbeat), beside the kit or instead of it.
``time_keeper``, the voice the model's hi-hat strokes are played on (jazz keeps time on the ride: the
GRU hears its hat strokes there, and is primed with one of its genre's Groove grooves kept on the ride,
not the jazz-march and fusion grooves Groove files under jazz); ``timeline``, a pattern of one or more
4/4 bars that runs through the whole clip, fills too, its first bar where each phrase starts (a salsa's
son clave, a bossa's clave, jazz's hi-hat foot on 2 and 4): the model plays it on one of its voices (a
clave on the snare, where Groove's latin drummers play rim clicks), so it hears it and plays its groove
around it, and its strokes are written at the timeline's key (the side stick, the pedal hi-hat), at least
`DRUM_TIMELINE_MIN_VELOCITY` loud. Only a bar of 16 steps (4/4, 2/2) plays a timeline.

A phrase-end bar the model leaves nearly empty (fewer hits than `DRUM_THIN_FILL_SHARE` of the
clip's median groove bar; Groove's hip hop drummers sometimes drop out for a whole bar) keeps the
groove's first half, the last groove bar's hits as the model played them, and the model's own
second half: a break at the phrase's end instead of a bar of silence.

Hits carry the model's velocity (times the energy and the clip's dynamics arc) and, unless the
spec asks for `quantize`, its micro-timing offset; quantized, every hit sits exactly on its 16th.
Ensemble hits sit on the grid. A swung spec swings the drummer at its own subdivision, before its
own offset: a part whose time keeper (its hi-hat or ride) plays 8ths moves the off-beat eighths to the
triplet position, as every part's are; one whose time keeper plays 16ths (hip hop's and funk's hats)
swings its 16ths, each second 16th of an eighth moved to the 16th triplet (an MPC's 16th swing). A jazz
ride's skip note is a triplet that Groove's 16th grid files under the beat's fourth 16th (the model plays
it there, a third of a step early): that ride plays swung 8ths, not 16ths. Moving
only the eighths of a 16th groove put each off-beat hat a third of a step before the next 16th's: a
flam on every beat, and a groove no Groove drummer plays.

Bar count and meter hold by construction: hits are only written at steps inside each bar of the
requested meter, and a hit pushed early or late never leaves the clip (the first downbeat stays at 0).
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from symusic import Note, Track

from engine.catalog.styles import DrumStyle, EnsembleHit, Timeline
from engine.compose.form import Form
from engine.config import (
    DRUM_ACCENT_VELOCITY,
    DRUM_DENSITY_PER_ENERGY,
    DRUM_GENRE_GUIDANCE,
    DRUM_NOTE_TICKS,
    DRUM_PHRASE_BARS,
    DRUM_SECTION_ENERGY,
    DRUM_SIXTEENTH_E_SHARE,
    DRUM_SIXTEENTH_SWING_SHARE,
    DRUM_TEMPERATURE,
    DRUM_THIN_FILL_SHARE,
    DRUM_TIMELINE_MIN_VELOCITY,
    DRUM_VELOCITY_PER_ENERGY,
    TICKS_PER_QUARTER,
)
from engine.music.theory import Meter

if TYPE_CHECKING:
    from engine.model.drums import DrumHit

STEP_TICKS = TICKS_PER_QUARTER // 4
SWING_TICKS = TICKS_PER_QUARTER // 6  # a straight off-beat eighth to the swung (triplet) one

def phrase_flags(bars: int, phrase_bars: int = DRUM_PHRASE_BARS) -> tuple[list[bool], list[bool]]:
    """(fill, phrase_start) per bar without a form: the last bar of every phrase is a fill; a clip
    shorter than a phrase has no fill (a 1- or 2-bar loop keeps its groove)."""
    fill = [(b + 1) % phrase_bars == 0 for b in range(bars)]
    start = [b % phrase_bars == 0 for b in range(bars)]
    return fill, start

def form_places(clip_form: Form) -> dict[str, list[bool]]:
    """Per bar, whether it is each of the form's places (styles.py FORM_PLACES).

    A section starts where the form's label changes, and at a song's first bar (not a loop's: its
    first bar follows its last). A section ends on the bar before a section starts.
    """
    bars = clip_form.bars
    n = len(bars)
    phrase_start = [b.position == 0 for b in bars]
    section_start = [b.position == 0 and (b.index > 0 and bars[b.index - 1].section != b.section
                                          or b.index == 0 and not clip_form.loop) for b in bars]
    section_end = [b.index + 1 < n and bars[b.index + 1].position == 0 and
                   bars[b.index + 1].section != b.section for b in bars]
    return {"section_start": section_start, "phrase_start": phrase_start, "section_end": section_end,
            "phrase_end": [b.phrase_end for b in bars], "every_bar": [True] * n}

def steps_per_bar(meter: Meter) -> int:
    """16th steps in a bar of this meter (a /32 meter's odd 32nd is not used)."""
    return max(1, round(meter.quarters_per_bar * TICKS_PER_QUARTER) // STEP_TICKS)

def rule_grid(style: DrumStyle) -> np.ndarray | None:
    """The style's kit rules as (16 positions, voices) of FREE / NEVER / ALWAYS / ACCENT, or None without rules."""
    from engine.model.drums import ACCENT, ALWAYS, FREE, NEVER, VOICE_NAMES

    if not style.rules:
        return None
    grid = np.full((16, len(VOICE_NAMES)), FREE, np.int8)
    cell = {"X": ACCENT, "x": ALWAYS, "-": NEVER, ".": FREE}
    for voice, cells in style.rules:
        grid[:, VOICE_NAMES.index(voice)] = [cell[c] for c in cells]
    return grid

def bar_rules(style: DrumStyle, fill: list[bool], position: list[int], steps_in_bar: int) -> np.ndarray | None:
    """The kit's rules per bar, (bars, 16 positions, voices): the style's rules in every bar that is not a fill,
    and its timeline (a clave) in every bar, fills too, its first bar where each phrase starts (``position``:
    each bar's place in its phrase). A timeline is a 4/4 pattern: only a bar of 16 steps plays it. None when
    the style has neither."""
    from engine.model.drums import ACCENT, ALWAYS, FREE, VOICE_NAMES

    grid = rule_grid(style)
    timeline = style.timeline if steps_in_bar == 16 else None
    if grid is None and timeline is None:
        return None
    free = np.full((16, len(VOICE_NAMES)), FREE, np.int8)
    out = np.stack([free if f or grid is None else grid for f in fill]).copy()
    if timeline is not None:
        voice = VOICE_NAMES.index(timeline.voice)
        for bar, pos in enumerate(position):
            for step, cell in enumerate(timeline_bar(timeline, pos)):
                if cell != "-":
                    out[bar, step, voice] = ACCENT if cell == "X" else ALWAYS
    return out

def timeline_bar(timeline: Timeline, position: int) -> str:
    """The timeline's 16 cells for a bar at this place in its phrase: its first bar where a phrase starts."""
    return timeline.cells[16 * (position % timeline.bars):][:16]

def timeline_strokes(style: DrumStyle, position: list[int], steps_in_bar: int) -> set[tuple[int, int]]:
    """(bar, step) of every stroke of the style's timeline in the clip (bar_rules)."""
    timeline = style.timeline
    if timeline is None or steps_in_bar != 16:
        return set()
    return {(bar, step) for bar, pos in enumerate(position)
            for step, cell in enumerate(timeline_bar(timeline, pos)) if cell != "-"}

def phrase_positions(clip_form: Form | None, bars: int) -> list[int]:
    """Each bar's place in its phrase: the form's, or phrases of `DRUM_PHRASE_BARS` without a form."""
    return [b.position for b in clip_form.bars] if clip_form is not None else [b % DRUM_PHRASE_BARS
                                                                              for b in range(bars)]

def bar_energy(clip_form: Form | None, bars: int, energy: float, dynamics: np.ndarray | None) -> tuple[
        np.ndarray, np.ndarray]:
    """(energy per bar for the hit density, velocity scale per bar from section and prompt) (module docstring)."""
    lift = np.array([DRUM_SECTION_ENERGY.get(b.section, 0.0) for b in clip_form.bars]) if clip_form else np.zeros(bars)
    level = lift + (energy - 0.5)
    arc = (dynamics - 1.0) if dynamics is not None else np.zeros(bars)
    return level + arc, 1.0 + DRUM_VELOCITY_PER_ENERGY * level

KICKS = (35, 36)
FLOOR_KICK_VELOCITY = 110

def write_drums(track: Track, *, meter: Meter, bars: int, tempo: float, genre: str | None, seed: int,
                quantize: bool, swing: bool = False, dynamics: np.ndarray | None = None,
                four_on_the_floor: bool = False, style: DrumStyle | None = None, clip_form: Form | None = None,
                energy: float = 0.5) -> int:
    """Append the clip's drum hits to ``track`` (module docstring); return how many were written.

    ``four_on_the_floor`` (a style idiom no Groove drummer teaches: the dance styles' sequenced
    kick) replaces the model's kicks with one exactly on every beat; the rest of the kit stays the
    model's.
    """
    style = style or DrumStyle()
    if clip_form is not None and len(clip_form.bars) != bars:
        raise ValueError(f"the form has {len(clip_form.bars)} bars and the clip {bars}")
    bar_ticks = round(meter.quarters_per_bar * TICKS_PER_QUARTER)
    spb = steps_per_bar(meter)
    end = bars * bar_ticks
    level, loudness = bar_energy(clip_form, bars, energy, dynamics)
    written = 0
    if clip_form is not None:
        places = form_places(clip_form)
        fill, start, crash = places["phrase_end"], places["phrase_start"], places["section_start"]
        written += _ensemble(track, style.hits, places, spb, bar_ticks, end, dynamics)
    else:
        fill, start = phrase_flags(bars)
        crash = [False] * bars
    position = phrase_positions(clip_form, bars)
    if not style.kit:
        return written
    from engine.model.drums import VOICE_NAMES, load_default

    generator = load_default()
    keeper = VOICE_NAMES.index(style.time_keeper) if style.time_keeper else None
    hits = generator.generate([spb] * bars, genre, tempo, fill, start, seed=seed, temperature=DRUM_TEMPERATURE,
                              guidance=DRUM_GENRE_GUIDANCE, rules=bar_rules(style, fill, position, spb),
                              density=list(DRUM_DENSITY_PER_ENERGY * level), crash=crash,
                              accent_velocity=DRUM_ACCENT_VELOCITY, time_keeper=keeper)
    hits = keep_groove_in_thin_fills(hits, bars, spb, fill)
    if four_on_the_floor:
        hits = [hit for hit in hits if hit.pitch not in KICKS]
        beat = meter.beat_ticks()
        for bar in range(bars):
            scale = float(dynamics[bar]) if dynamics is not None else 1.0
            for tick in range(0, bar_ticks, beat):
                velocity = int(np.clip(round(FLOOR_KICK_VELOCITY * scale), 1, 127))
                track.notes.append(Note(bar * bar_ticks + tick, DRUM_NOTE_TICKS, KICKS[1], velocity))
                written += 1
    swung = swing_ticks(hits) if swing else {}
    if swung == {2: SWING_TICKS}:
        hits = merge_swung_pairs(hits)
    on_timeline = timeline_strokes(style, position, spb)
    timeline_voice = VOICE_NAMES.index(style.timeline.voice) if style.timeline else -1
    for hit in hits:
        pitch, played = hit.pitch, hit.velocity
        if hit.voice == timeline_voice and (hit.bar, hit.step) in on_timeline:
            pitch, played = style.timeline.key, max(played, DRUM_TIMELINE_MIN_VELOCITY)
        time = hit.bar * bar_ticks + hit.step * STEP_TICKS + swung.get(hit.step % 4, 0)
        if not quantize:
            time += round(hit.offset * STEP_TICKS)
        time = min(max(time, 0), end - 1)
        scale = (float(dynamics[hit.bar]) if dynamics is not None else 1.0) * float(loudness[hit.bar])
        velocity = int(np.clip(round(played * scale), 1, 127))
        track.notes.append(Note(time, min(DRUM_NOTE_TICKS, end - time), pitch, velocity))
        written += 1
    return written

def swing_ticks(hits: list[DrumHit]) -> dict[int, int]:
    """How far a swung clip moves the drummer's hits, by their place in the beat (16th 0-3): at the part's own
    subdivision (module docstring). Its time keeper is the cymbal it strikes most (closed or open hi-hat,
    ride); when at least `DRUM_SIXTEENTH_SWING_SHARE` of that cymbal's hits fall on a beat's second or
    fourth 16th, and `DRUM_SIXTEENTH_E_SHARE` on its second (a jazz ride's triplet skip note sits on the
    fourth alone), the part plays 16ths and swings them (each second 16th of an eighth moves to the 16th
    triplet, a third of a step late); otherwise its off-beat eighth moves to the triplet, as every part's does."""
    from engine.model.drums import VOICE_NAMES

    cymbals = [VOICE_NAMES.index(name) for name in ("closed_hat", "open_hat", "ride")]
    counts = [sum(h.voice == v for h in hits) for v in cymbals]
    keeper = cymbals[int(np.argmax(counts))]
    steps = [h.step for h in hits if h.voice == keeper]
    if steps and sum(s % 2 for s in steps) >= DRUM_SIXTEENTH_SWING_SHARE * len(steps) and \
            sum(s % 4 == 1 for s in steps) >= DRUM_SIXTEENTH_E_SHARE * len(steps):
        return {1: SWING_TICKS // 2, 3: SWING_TICKS // 2}
    return {2: SWING_TICKS}

def merge_swung_pairs(hits: list[DrumHit]) -> list[DrumHit]:
    """The hits with each voice's pair of strokes on a beat's third and fourth 16th made one, the louder: swung
    8ths move the third to the triplet, where the model already plays the fourth (a third of a step early,
    as Groove's swing drummers' skip notes sit in its grid), so the two would flam."""
    at = {(h.bar, h.step, h.voice): h for h in hits}
    drop = set()
    for (bar, step, voice), hit in at.items():
        other = at.get((bar, step + 1, voice)) if step % 4 == 2 else None
        if other is not None:
            drop.add(id(other) if other.velocity <= hit.velocity else id(hit))
    return [h for h in hits if id(h) not in drop]

def keep_groove_in_thin_fills(hits: list[DrumHit], bars: int, steps_in_bar: int, fill: list[bool]) -> list[DrumHit]:
    """The hits with each nearly empty phrase-end bar's first half replaced by the last groove bar's
    (module docstring); a bar with no groove bar before it is left as played."""
    count = np.bincount([h.bar for h in hits], minlength=bars)
    groove = [b for b in range(bars) if not fill[b]]
    if not groove:
        return hits
    usual = float(np.median(count[groove]))
    half = steps_in_bar // 2
    out = list(hits)
    for bar in range(bars):
        before = [b for b in groove if b < bar]
        if not fill[bar] or count[bar] >= DRUM_THIN_FILL_SHARE * usual or not before:
            continue
        out = [h for h in out if not (h.bar == bar and h.step < half)]
        out += [replace(h, bar=bar) for h in hits if h.bar == before[-1] and h.step < half]
    return sorted(out, key=lambda h: (h.bar, h.step, h.voice))

def _ensemble(track: Track, hits: tuple[EnsembleHit, ...], places: dict[str, list[bool]], spb: int,
              bar_ticks: int, end: int, dynamics: np.ndarray | None) -> int:
    """The style's ensemble strokes where the form places them; a swell's velocity rises over the steps
    the bar has."""
    written = 0
    for hit in hits:
        steps = [s for s in hit.steps if s < spb]
        ramp = np.linspace(hit.velocity[0], hit.velocity[1], len(steps)) if steps else []
        for bar, here in enumerate(places[hit.at]):
            if not here:
                continue
            scale = float(dynamics[bar]) if dynamics is not None else 1.0
            for step, velocity in zip(steps, ramp, strict=True):
                time = bar * bar_ticks + step * STEP_TICKS
                v = int(np.clip(round(velocity * scale), 1, 127))
                track.notes.append(Note(time, min(DRUM_NOTE_TICKS, end - time), hit.key, v))
                written += 1
    return written
