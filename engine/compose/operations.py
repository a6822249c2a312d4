"""Co-creation operations on a take's music: vary, infill, continue, accompany, rearrange.

Each is a pure function of the take (spec, score), its arguments and a seed, returning the new
score (vary, infill, extend) or the new spec and score (accompany, restyle, rearrange), so the
same take, arguments and seed give the same result. What is not asked to change is copied note
for note: untouched parts, and every bar of an infilled part outside its region.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from symusic import KeySignature, Note, Score, Tempo, TimeSignature, Track

from engine.catalog import styles
from engine.catalog.instruments import for_role, lookup
from engine.compose import form
from engine.compose import learned as learned_parts
from engine.compose.continuation import continue_clip
from engine.compose.pipeline import arrange_part, learned_bars, part_bars, part_model_role, plan_voices, write_bars
from engine.config import BARS_MAX, BARS_MIN, TEMPO_MAX_BPM, TEMPO_MIN_BPM, TICKS_PER_QUARTER
from engine.errors import SpecError
from engine.music.analysis import Chord, chords_per_bar, read_clip, score_notes
from engine.music.spec import MusicSpec, Part
from engine.music.theory import parse_key

# Model drafts per infill; the one after which the model finds the bars that follow the region
# most likely wins (see join_logprobs). Two keep a 2-bar infill near 0.2 s on this loaded 2-core machine.
INFILL_CANDIDATES = 2
JOIN_CONTEXT_BARS = 4  # bars before the region the join score reads
JOIN_AFTER_BARS = 2  # bars after the region whose likelihood is the join score
GHOST_VELOCITY = 46


def bar_ticks(spec: MusicSpec) -> int:
    return spec.meter.bar_ticks()


def _track(score: Score, name: str) -> Track:
    for track in score.tracks:
        if track.name == name:
            return track
    raise SpecError("part", f"the take has no part {name!r}; its parts are {', '.join(t.name for t in score.tracks)}")


def _part(spec: MusicSpec, name: str) -> Part:
    """The part called ``name``, or the one part playing role ``name`` ("bass" finds upright_bass)."""
    for part in spec.parts:
        if part.name == name:
            return part
    by_role = [part for part in spec.parts if part.role == name]
    if len(by_role) == 1:
        return by_role[0]
    parts = ", ".join(f"{p.name} ({p.role})" for p in spec.parts)
    if by_role:
        raise SpecError("part", f"{len(by_role)} parts play {name!r}; name one of them: {parts}")
    raise SpecError("part", f"the take has no part {name!r}; its parts are {parts}")


def part_names(spec: MusicSpec, names: list[str]) -> list[str]:
    """The take's part names for what a composer typed: part names, or roles played by one part."""
    return [_part(spec, name).name for name in names]


def _copy(score: Score) -> Score:
    return score.copy(deep=True)


def _heard_chords(spec: MusicSpec, score: Score, exclude: set[str], bars: int) -> list[Chord]:
    """The harmony of the parts that stay, bar by bar (all pitched parts if none stay)."""
    kept = Score(TICKS_PER_QUARTER)
    for track in score.tracks:
        if track.name not in exclude and not track.is_drum:
            kept.tracks.append(track.copy())
    notes = score_notes(kept) or score_notes(score)
    return chords_per_bar(notes, spec.key, spec.meter, bars, TICKS_PER_QUARTER)


def _chords(spec: MusicSpec, score: Score, exclude: set[str], bars: int) -> list[tuple[int, int, int]]:
    return [c.pcs for c in _heard_chords(spec, score, exclude, bars)]


def _take_form(spec: MusicSpec, chords: list[Chord]) -> form.Form:
    """The form compose gives a clip of the take's style and length, over the chords heard in the take."""
    style = styles.get(spec.style)
    plan = form.plan(spec.bars, spec.key, list(style.progressions), spec.seed,
                     learned_parts.settings(spec.style).loop)
    return replace(plan, bars=tuple(replace(bar, chord=chord) for bar, chord in zip(plan.bars, chords, strict=True)))


def _model_rewrite(spec: MusicSpec, score: Score, part: Part, rewrite: set[int], seed: int, *,
                   keep_rhythm: bool = False) -> list[Note]:
    """The part model's new notes for bars ``rewrite`` (0-based) of ``part``, continuing the part as it
    stands (its other bars are the model's context) over the harmony of the other parts."""
    clip_form = _take_form(spec, _heard_chords(spec, score, {part.name}, spec.bars))
    given = part_bars(_track(score, part.name).notes, spec, spec.bars)
    bars, _ = learned_bars(part, spec.parts.index(part), spec, clip_form, given=given, rewrite=rewrite,
                           keep_rhythm=keep_rhythm, seed=seed)
    return _placed(spec, part, bars, rewrite)


def _placed(spec: MusicSpec, part: Part, bars: list[list[learned_parts.BarNote]], only: set[int]) -> list[Note]:
    """Bars of a part as Notes placed in the clip (swing and arc as compose writes them), each note cut at
    the end of its bar's run of ``only`` bars."""
    out = Track(name=part.name, program=part.program)
    write_bars(out, spec, bars, only=only)
    ticks = bar_ticks(spec)
    notes = []
    for n in out.notes:
        end = n.time // ticks + 1
        while end in only:
            end += 1
        notes.append(Note(n.time, max(1, min(n.duration, end * ticks - n.time)), n.pitch, n.velocity))
    return notes


def _learned_infill(spec: MusicSpec, score: Score, part: Part, first: int, last: int, seed: int) -> list[Note]:
    """Bars ``first``-``last`` (1-based) of a part the part model writes: `INFILL_CANDIDATES` drafts that
    continue the bars before the region; the one after which the model finds the part's next
    `JOIN_AFTER_BARS` bars most likely is kept (PartModel.join_score), so it leads into what follows."""
    from engine.model import parts as partmodel
    from engine.model.generator import third_quality

    clip_form = _take_form(spec, _heard_chords(spec, score, {part.name}, spec.bars))
    given = part_bars(_track(score, part.name).notes, spec, spec.bars)
    region = set(range(first - 1, last))
    drafts = []
    for k in range(INFILL_CANDIDATES):
        bars, _ = learned_bars(part, spec.parts.index(part), spec, clip_form, given=given, rewrite=region,
                               seed=int(np.random.default_rng([seed, k]).integers(2**31)))
        drafts.append(bars)
    following = range(last, min(spec.bars, last + JOIN_AFTER_BARS))
    best = drafts[0]
    if len(drafts) > 1 and any(given[b] for b in following):
        from engine.compose.pipeline import Grid

        grid = Grid.of(spec.meter)

        def tokens(bars, which):
            per_bar = learned_parts.bar_tokens([bars[b] for b in which], [clip_form.bars[b] for b in which],
                                               tonic_pc=spec.key.tonic_pc, steps=grid.steps,
                                               group_starts=grid.group_starts)
            return [piece for bar in per_bar for piece in bar]

        role = part_model_role(spec, part)
        scores = partmodel.load().join_score(
            role, mode=third_quality(spec.key), beats=round(spec.meter.quarters_per_bar),
            energy=learned_parts.energy_band(spec.energy), before=tokens(given, range(first - 1)),
            drafts=[tokens(d, sorted(region)) for d in drafts], after=tokens(given, following))
        best = drafts[int(np.nanargmax(scores))] if not all(np.isnan(scores)) else drafts[0]
    return _placed(spec, part, best, region)


def _nearest_pc(pcs: tuple[int, ...], pitch: int, lo: int, hi: int, avoid: int | None = None) -> int:
    options = [p for p in range(lo, hi + 1) if p % 12 in pcs and p != avoid]
    if not options:
        return pitch
    return min(options, key=lambda p: (abs(p - pitch), p))


def _vary_pitched(notes: list[Note], part: Part, chords, spec: MusicSpec, amount: float,
                  rng: np.random.Generator) -> list[Note]:
    """Each note moves, with probability ``amount``, to another tone of its bar's chord nearby;
    above 0.5 the rhythm changes too (notes split in two). Small amounts keep rhythm and contour."""
    ticks = bar_ticks(spec)
    out: list[Note] = []
    for n in notes:
        chord = chords[min(len(chords) - 1, n.time // ticks)]
        pitch = n.pitch
        if rng.random() < amount:
            pitch = _nearest_pc(chord, n.pitch + int(rng.choice([-4, -2, 2, 4])), part.low, part.high, avoid=n.pitch)
        split = amount > 0.5 and n.duration >= TICKS_PER_QUARTER // 2 and rng.random() < 2 * (amount - 0.5)
        if split:
            half = n.duration // 2
            second = _nearest_pc(chord, pitch + int(rng.choice([-3, 3])), part.low, part.high, avoid=pitch)
            out += [Note(n.time, half, pitch, n.velocity), Note(n.time + half, n.duration - half, second, n.velocity)]
        else:
            out.append(Note(n.time, n.duration, pitch, n.velocity))
    return out


def _vary_drums(notes: list[Note], spec: MusicSpec, amount: float, rng: np.random.Generator) -> list[Note]:
    """Drop some cymbal hits and add ghost snares, in a share ``amount`` of the bars."""
    ticks = bar_ticks(spec)
    step = TICKS_PER_QUARTER // 4
    bars = max(1, -(-max((n.time + n.duration for n in notes), default=ticks) // ticks))
    out = list(notes)
    for bar in range(bars):
        if rng.random() >= amount:
            continue
        cymbals = [n for n in out if bar * ticks <= n.time < (bar + 1) * ticks and n.pitch in (42, 51)]
        for n in cymbals:
            if rng.random() < amount * 0.5:
                out.remove(n)
        for s in rng.choice(ticks // step, size=1 + int(amount * 3), replace=False):
            out.append(Note(int(bar * ticks + s * step), step, 38, GHOST_VELOCITY))
    return out


def _varied_bars(bars: int, amount: float, rng: np.random.Generator) -> set[int]:
    """The bars a variation of ``amount`` rewrites: each with probability ``amount``, at least one."""
    chosen = {b for b in range(bars) if rng.random() < amount}
    return chosen or {int(rng.integers(bars))}


def vary(spec: MusicSpec, score: Score, parts: list[str], amount: float, seed: int) -> Score:
    """New material for ``parts``; every other part is copied unchanged.

    A part the part model writes in this style (engine/compose/pipeline.py part_model_role) is varied by
    the model, as generate writes it: a share ``amount`` of its bars is rewritten, continuing the bars
    before; up to 0.5 a rewritten bar keeps its rhythm and gets new pitches, above it the model writes the
    bar's rhythm too. Other parts (drums, percussion, the corpus model's voices) get the arranger's
    variation: chord tones moved, notes split, cymbals dropped and ghost notes added."""
    if not 0.0 <= amount <= 1.0:
        raise SpecError("amount", f"must be 0-1, got {amount}")
    if not parts:
        raise SpecError("parts", "name at least one part to vary")
    out = _copy(score)
    names = part_names(spec, parts)
    chords = _chords(spec, score, set(names), spec.bars)
    for name in names:
        part, track = _part(spec, name), _track(out, name)
        rng = np.random.default_rng([seed, sum(map(ord, name))])
        old = [Note(n.time, n.duration, n.pitch, n.velocity) for n in track.notes]
        ticks = bar_ticks(spec)
        for _ in range(8):  # a draw that changes nothing is drawn again
            if part_model_role(spec, part) is not None:
                rewrite = _varied_bars(spec.bars, max(amount, 0.05), rng)
                new = [n for n in old if n.time // ticks not in rewrite] + _model_rewrite(
                    spec, score, part, rewrite, int(rng.integers(2**31)), keep_rhythm=amount <= 0.5)
            elif part.is_drum:
                new = _vary_drums(old, spec, max(amount, 0.05), rng)
            else:
                new = _vary_pitched(old, part, chords, spec, max(amount, 0.05), rng)
            if _key(new) != _key(old):
                break
        track.notes.clear()
        for n in sorted(new, key=lambda n: (n.time, n.pitch)):
            track.notes.append(n)
    return out


def _key(notes) -> list[tuple[int, int, int, int]]:
    return sorted((int(n.time), int(n.duration), int(n.pitch), int(n.velocity)) for n in notes)


def check_bar_range(spec: MusicSpec, first: int, last: int) -> None:
    """Bars ``first``-``last`` (1-based) lie inside the take."""
    if not 1 <= first <= last <= spec.bars:
        raise SpecError("bars", f"must be A-B with 1 <= A <= B <= {spec.bars} (the take's length), got {first}-{last}")


def infill(spec: MusicSpec, score: Score, part_name: str, first: int, last: int, seed: int) -> Score:
    """New notes for bars ``first``-``last`` (1-based) of one part; nothing outside them changes.

    A part the part model writes in this style (melody, bass, comping, keys, pad: pipeline.part_model_role)
    is infilled by the part model (`_learned_infill`), as generate writes it. Other pitched parts (a
    corpus style's melody): the corpus model continues the part's own bars before the region (its
    context), `INFILL_CANDIDATES` drafts are decoded, and the one after which the model finds the part's
    following bars most likely is kept (join_logprobs), so it leads into what follows; with
    nothing after the region, the draft ending nearest the next note. Drum parts, or a region at
    bar 1 with no context: the arranger's variation at full amount, confined to the region.
    """
    check_bar_range(spec, first, last)
    part = _part(spec, part_name)
    part_name = part.name
    out = _copy(score)
    track = _track(out, part_name)
    ticks = bar_ticks(spec)
    start, end = (first - 1) * ticks, last * ticks
    outside = [n for n in track.notes if not start <= n.time < end]
    inside = [n for n in track.notes if start <= n.time < end]
    before = [n for n in track.notes if n.time < start]
    after = [n for n in track.notes if n.time >= end]
    new: list[Note] = []
    if part_model_role(spec, part) is not None:
        new = _learned_infill(spec, score, part, first, last, seed)
    elif not part.is_drum and before:
        new = _model_infill(spec, part, before, after, first, last, seed)
    if not new:
        chords = _chords(spec, score, {part_name}, spec.bars)
        rng = np.random.default_rng([seed, 31])
        region = [Note(n.time, n.duration, n.pitch, n.velocity) for n in inside]
        for _ in range(8):
            new = (_vary_drums(region, spec, 1.0, rng) if part.is_drum
                   else _vary_pitched(region, part, chords, spec, 1.0, rng))
            new = [n for n in new if start <= n.time < end]
            if _key(new) != _key(region):
                break
    track.notes.clear()
    for n in sorted(outside + new, key=lambda n: (n.time, n.pitch)):
        track.notes.append(n)
    return out


def infill_context(spec: MusicSpec, part: Part, before: list[Note], first: int) -> Score:
    """The clip the model continues to draft bars ``first``..: the part's notes before them, cut at the region."""
    start = (first - 1) * bar_ticks(spec)
    clip = Score(TICKS_PER_QUARTER)
    clip.tempos.append(Tempo(0, qpm=spec.tempo_bpm))
    clip.time_signatures.append(TimeSignature(0, spec.meter.numerator, spec.meter.denominator))
    context = Track(name=part.name, program=part.program)
    for n in before:
        context.notes.append(Note(n.time, min(n.duration, start - n.time), n.pitch, n.velocity))
    clip.tracks.append(context)
    return clip


def infill_drafts(spec: MusicSpec, part: Part, before: list[Note], first: int, last: int, seed: int,
                  count: int) -> list[list[Note]]:
    """Up to ``count`` model drafts of bars ``first``-``last`` of ``part`` (left to right, after ``before``),
    placed in the region, cut at its end and kept within an octave of the part's range; empty drafts dropped."""
    ticks = bar_ticks(spec)
    start, end = (first - 1) * ticks, last * ticks
    clip = infill_context(spec, part, before, first)
    drafts = []
    for k in range(count):
        draft = continue_clip(clip, replace(spec, seed=int(np.random.default_rng([seed, k]).integers(2**31))),
                              last - first + 1)
        notes = [Note(start + n.time, min(n.duration, end - start - n.time), n.pitch, n.velocity)
                 for t in draft.score.tracks for n in t.notes if n.time < end - start]
        notes = [n for n in notes if n.duration > 0 and part.low - 12 <= n.pitch <= part.high + 12]
        if notes:
            drafts.append(notes)
    return drafts


def _model_infill(spec: MusicSpec, part: Part, before: list[Note], after: list[Note], first: int, last: int,
                  seed: int) -> list[Note]:
    target = after[0].pitch if after else None
    drafts = infill_drafts(spec, part, before, first, last, seed, INFILL_CANDIDATES)
    if len(drafts) < 2:
        return drafts[0] if drafts else []
    joins = join_logprobs(spec, before, drafts, after, first, last)
    if all(j is not None for j in joins):
        return drafts[int(np.argmax(joins))]
    # No bars after the region to read (or no model): the draft ending nearest the next note.
    return min(drafts, key=lambda notes: abs(max(notes, key=lambda n: n.time).pitch - target)
               if target is not None else 0)


def join_logprobs(spec: MusicSpec, before: list[Note], drafts: list[list[Note]], after: list[Note], first: int,
                  last: int) -> list[float | None]:
    """How well each draft of bars ``first``-``last`` joins what follows: the model's mean log-probability
    of the part's next `JOIN_AFTER_BARS` bars, read after the `JOIN_CONTEXT_BARS` before the region
    and the draft (all drafts in one batched forward pass). The drafts are written left to right;
    this is how the right side is heard. None when nothing follows the region in those bars or the
    meter is outside the vocabulary."""
    from engine.model.generator import load

    inputs = [_join_tokens(spec, before, region, after, first, last) for region in drafts]
    ready = [item for item in inputs if item is not None]
    if not ready:
        return [None] * len(drafts)
    rows = iter(load().token_logprobs_batch([tokens for tokens, _ in ready]))
    scores: list[float | None] = []
    for item in inputs:
        if item is None:
            scores.append(None)
            continue
        scored = next(rows)[item[1] - 1:]
        scores.append(float(np.mean(scored)) if scored else None)
    return scores


def _join_tokens(spec: MusicSpec, before: list[Note], region: list[Note], after: list[Note], first: int,
                 last: int) -> tuple[list[int], int] | None:
    """The model's input for a join score (prefix + the part's bars around the region, one block at
    most) and where the bars after the region start in it; None when there is nothing to score."""
    from engine.model.generator import load, style_settings

    ticks = bar_ticks(spec)
    lo_bar = max(0, first - 1 - JOIN_CONTEXT_BARS)
    hi_bar = min(spec.bars, last + JOIN_AFTER_BARS)  # exclusive, 0-based bar index
    lo, hi, start = lo_bar * ticks, hi_bar * ticks, (first - 1) * ticks
    following = [n for n in after if n.time < hi]
    if not following:
        return None
    generator = load()
    vocab = generator.vocab
    try:
        vocab.time_signature(spec.meter)
    except KeyError:
        return None
    clip = Score(TICKS_PER_QUARTER)
    clip.time_signatures.append(TimeSignature(0, spec.meter.numerator, spec.meter.denominator))
    voice = Track(program=0)  # the single voice slot continue_clip gave the drafts
    for n in before:
        if n.time >= lo:
            voice.notes.append(Note(n.time - lo, max(1, min(n.duration, start - n.time)), n.pitch, n.velocity))
    for n in region + following:
        voice.notes.append(Note(n.time - lo, max(1, min(n.duration, hi - n.time)), n.pitch, n.velocity))
    clip.tracks.append(voice)
    encoded = vocab.tokenizer.encode(clip)
    ids = list((encoded[0] if isinstance(encoded, list) else encoded).ids)
    bar_lines = [i for i, t in enumerate(ids) if t == vocab.bar]
    first_after = last - lo_bar  # index of the first bar after the region, counted from lo_bar
    if len(bar_lines) <= first_after:
        return None
    settings = style_settings(spec.style)
    prefix = vocab.prefix(settings["model_style"], spec.key, spec.meter, spec.tempo_bpm, int(settings["density"]),
                          hi_bar - lo_bar, [0])
    after_at = bar_lines[first_after]
    overflow = len(prefix) + len(ids) - generator.model.config.block_size
    if overflow > 0:  # too long for one block: drop the earliest context, from a bar line if one is near
        cut = next((b for b in bar_lines if overflow <= b <= after_at), overflow)
        ids, after_at = ids[cut:], max(0, after_at - cut)
    return prefix + ids, len(prefix) + after_at


def extend(spec: MusicSpec, score: Score, bars: int, seed: int, played: Score | None = None,
           new_bars_only: bool = False) -> tuple[MusicSpec, Score]:
    """The take followed by ``bars`` more bars, same key, meter and tempo.

    The new bars continue the form (engine/compose/form.py, planned over the whole longer clip: its
    sections return, its cadences fall where a clip of that length has them) over the chords the take
    plays in its own bars. Parts the part model writes in this style (pipeline.part_model_role) are
    continued by it from their own last bars, as generate writes them; other pitched parts (a corpus
    style's melody) by the corpus model (engine/compose/continuation.py); drums and percussion by the
    drum model and the arranger. ``played`` (notes a musician played along with the take, time 0 = the
    take's first bar) is the context the new bars answer: the corpus model reads it as extra voices,
    and the part model's melody continues the musician's line in the bars where they played. It is
    not added to the take. ``new_bars_only``: the result holds just the new bars from tick 0 (a
    live-jam phrase), not the take followed by them.
    """
    if not BARS_MIN <= bars <= BARS_MAX - spec.bars:
        raise SpecError("bars", f"must be {BARS_MIN}-{BARS_MAX - spec.bars} (a clip is at most {BARS_MAX} bars), "
                                f"got {bars}")
    ticks = bar_ticks(spec)
    offset = spec.bars * ticks
    new_spec = replace(spec, bars=spec.bars + bars, seed=seed)
    out = _copy(score)
    added: dict[str, list[Note]] = {}
    learned = {part.name for part in spec.parts if part_model_role(spec, part) is not None}
    heard = _heard_chords(spec, score, set(), spec.bars)
    style = styles.get(spec.style)
    whole = form.plan(new_spec.bars, spec.key, list(style.progressions), seed, learned_parts.settings(spec.style).loop)
    whole = replace(whole, bars=tuple(replace(bar, chord=heard[bar.index]) if bar.index < spec.bars else bar
                                      for bar in whole.bars))
    new_region = set(range(spec.bars, new_spec.bars))
    played_bars = part_bars(score_notes_of(played), new_spec, new_spec.bars) if played is not None else None
    for part in spec.parts:
        if part.name not in learned or not any(t.name == part.name for t in score.tracks):
            continue
        given = part_bars(_track(score, part.name).notes, new_spec, new_spec.bars)
        if played_bars is not None and part.role == "melody":
            given = [mine if not theirs else theirs for mine, theirs in zip(given, played_bars, strict=True)]
        new, _ = learned_bars(part, spec.parts.index(part), new_spec, whole, given=given, rewrite=new_region,
                              seed=int(np.random.SeedSequence([seed, spec.parts.index(part), 1]).generate_state(1)[0]))
        added[part.name] = _placed(new_spec, part, new, new_region)
    corpus = _copy(score)
    corpus.tracks = [t for t in corpus.tracks if t.name not in learned and not t.is_drum]
    context = with_played(corpus, played) if played is not None else corpus
    if corpus.tracks and score_notes(context):
        continuation = continue_clip(context, replace(spec, seed=seed), bars)
        for track in continuation.score.tracks:
            if track.name in learned:
                continue
            added[track.name] = [Note(offset + n.time, n.duration, n.pitch, n.velocity) for n in track.notes
                                 if n.time < bars * ticks]
    section = replace(spec, bars=bars, seed=seed)
    chords = [bar.chord.pcs for bar in whole.bars[spec.bars:]]
    for track in out.tracks:
        notes = added.get(track.name)
        if notes is None:
            part = next((p for p in spec.parts if p.name == track.name), None)
            if part is None:
                continue
            notes = [Note(offset + n.time, n.duration, n.pitch, n.velocity)
                     for n in arrange_part(section, part, chords, seed).notes]
        for n in notes:
            track.notes.append(n)
        track.notes.sort(key=lambda n: (n.time, n.pitch))
    if new_bars_only:
        return replace(new_spec, bars=bars), _from(out, offset)
    return new_spec, out


def score_notes_of(clip: Score) -> list[Note]:
    """Every pitched note of ``clip`` (symusic Notes, at the take's resolution)."""
    if clip.ticks_per_quarter != TICKS_PER_QUARTER:
        clip = clip.resample(TICKS_PER_QUARTER)
    return [n for t in clip.tracks if not t.is_drum for n in t.notes]


def with_played(score: Score, played: Score) -> Score:
    """``score`` plus the pitched tracks of ``played`` (renamed "played N"), aligned at tick 0."""
    context = _copy(score)
    if played.ticks_per_quarter != TICKS_PER_QUARTER:
        played = played.resample(TICKS_PER_QUARTER)
    for i, track in enumerate(t for t in played.tracks if not t.is_drum and len(t.notes)):
        copy = Track(name=f"played {i + 1}", program=track.program)
        for n in track.notes:
            copy.notes.append(Note(n.time, max(1, n.duration), n.pitch, n.velocity))
        context.tracks.append(copy)
    return context


def _from(score: Score, offset: int) -> Score:
    """The notes of ``score`` from tick ``offset`` on, moved to start at tick 0 (meta events kept)."""
    out = _copy(score)
    for track in out.tracks:
        notes = [Note(n.time - offset, n.duration, n.pitch, n.velocity) for n in track.notes if n.time >= offset]
        track.notes.clear()
        for n in notes:
            track.notes.append(n)
    return out


def _score_of(tracks: dict[str, list[Note]]) -> Score:
    score = Score(TICKS_PER_QUARTER)
    for name, notes in tracks.items():
        track = Track(name=name)
        for n in notes:
            track.notes.append(n)
        score.tracks.append(track)
    return score


def name_tracks(score: Score) -> Score:
    """Give unnamed tracks of a file a name ("track N"), so parts can be addressed by name."""
    for i, track in enumerate(score.tracks):
        if not track.name:
            track.name = f"track {i + 1}"
    return score


def spec_for_clip(clip: Score, base: MusicSpec) -> MusicSpec:
    """A spec describing a MIDI file: key detected, meter, tempo and length read, one part per track."""
    reading = read_clip(clip, TICKS_PER_QUARTER, base.tempo_bpm)
    clip, key, meter, tempo, bars = reading.clip, reading.key, reading.meter, reading.tempo_bpm, reading.bars
    if bars > BARS_MAX:
        raise SpecError("midi", f"is {bars} bars long; at most {BARS_MAX} are accepted")
    parts = [Part(t.name or f"track {i + 1}", "drums" if t.is_drum else "melody", "", t.program, t.is_drum, 0, 127)
             for i, t in enumerate(clip.tracks)]
    return replace(base, key=key, meter=meter, tempo_bpm=tempo, bars=bars, parts=parts)


def accompany(clip: Score, spec: MusicSpec, roles: list[str], seed: int) -> tuple[MusicSpec, Score]:
    """The given clip, unchanged, plus new parts (by role) over the harmony detected in it.

    ``spec`` (from the prompt) supplies style and instruments; key, meter, tempo and length
    come from the clip.
    """
    reading = read_clip(clip, TICKS_PER_QUARTER, spec.tempo_bpm, "to accompany")
    if not roles:
        raise SpecError("add", "name the parts to add, e.g. bass,drums")
    clip, notes, key, meter = reading.clip, reading.notes, reading.key, reading.meter
    tempo, bars = reading.tempo_bpm, reading.bars
    taken = {t.name for t in clip.tracks}
    parts = [Part(t.name or f"track {i + 1}", "melody", "", t.program, t.is_drum, 0, 127)
             for i, t in enumerate(clip.tracks)]
    new_parts: list[Part] = []
    for role in roles:
        part = next((p for p in spec.parts if p.role == role), None)
        if part is None:
            try:
                instrument = for_role(role)
            except SpecError as error:
                raise SpecError("add", error.message) from None
            part = Part(role, role, instrument.name, instrument.program, role == "drums", instrument.low,
                        instrument.high)
        if part.name in taken:
            part = replace(part, name=f"{part.name} (added)")
        new_parts.append(part)
    out_spec = replace(spec, key=key, meter=meter, tempo_bpm=tempo, bars=bars, parts=parts + new_parts, seed=seed)
    chords = [c.pcs for c in chords_per_bar(notes, key, meter, bars, TICKS_PER_QUARTER)]
    out = _copy(clip)
    if not len(out.key_signatures):
        out.key_signatures.append(KeySignature(0, key.fifths(), 0 if key.mode == "major" else 1))
    for part in new_parts:
        out.tracks.append(arrange_part(out_spec, part, chords, seed))
    return out_spec, out


def style_instrument(style_name: str, role: str):
    """The instrument the style uses for ``role`` (its default parts), or None if it names none."""
    roles = ("keys", "chords") if role in ("keys", "chords") else (role,)
    for word in styles.get(style_name).default_parts:
        instrument = lookup(word)
        if instrument.role in roles:
            return instrument
    return None


def restyle(spec: MusicSpec, score: Score, style_name: str) -> tuple[MusicSpec, Score]:
    """The take re-voiced in another style, not recomposed.

    Parts that play the model's voices (the melody, and keys or pad voicing the model's harmony:
    engine.compose.pipeline.plan_voices) keep every note. The arranger's parts (drums, bass, comping, pads,
    extra melodies) are rewritten by the new style's arranger over the take's own harmony
    (detected bar by bar in the model-voiced parts, or in all pitched parts if none), on the new
    style's instrument for their role when it names one.
    """
    names = sorted(styles.catalogue())
    if style_name not in names:
        raise SpecError("style", f"unknown style {style_name!r}; accepted: {', '.join(names)}")
    new_spec = replace(spec, style=style_name)
    model_parts = {spec.parts[i].name for i in plan_voices(spec.parts).slots_of}
    kept = Score(TICKS_PER_QUARTER)
    for track in score.tracks:
        if track.name in model_parts and not track.is_drum:
            kept.tracks.append(track.copy())
    notes = score_notes(kept) or score_notes(score)
    chords = [c.pcs for c in chords_per_bar(notes, spec.key, spec.meter, spec.bars, TICKS_PER_QUARTER)]
    out = _copy(score)
    parts = list(spec.parts)
    for i, part in enumerate(spec.parts):
        if part.name in model_parts:
            continue
        instrument = style_instrument(style_name, part.role)
        if instrument is not None and not part.is_drum:
            part = replace(part, instrument=instrument.name, program=instrument.program, low=instrument.low,
                           high=instrument.high)
        parts[i] = part
        new_track = arrange_part(new_spec, part, chords, spec.seed)
        track = _track(out, part.name)
        track.program = new_track.program
        track.notes.clear()
        for n in new_track.notes:
            track.notes.append(n)
    return replace(new_spec, parts=parts), out


def rearrange(spec: MusicSpec, score: Score, key: str | None = None, tempo: float | None = None,
              instruments: dict[str, str] | None = None, style: str | None = None) -> tuple[MusicSpec, Score]:
    """Exact transposition (same mode), a new tempo on the same ticks, other instruments, another
    style's arrangement (`restyle`); the model-written melody is never recomposed."""
    spec, score = restyle(spec, score, style) if style else (spec, score)
    out = _copy(score)
    new_spec = spec
    if key:
        target = parse_key(key)
        if target.mode != spec.key.mode:
            raise SpecError("key", f"rearrange transposes exactly, so the mode stays {spec.key.mode}; got {target}")
        shift = (target.tonic_pc - spec.key.tonic_pc) % 12
        shift = shift - 12 if shift > 6 else shift
        for track in out.tracks:
            if not track.is_drum:
                for n in track.notes:
                    n.pitch = int(np.clip(n.pitch + shift, 0, 127))
        out.key_signatures.clear()
        out.key_signatures.append(KeySignature(0, target.fifths(), 0 if target.mode == "major" else 1))
        new_spec = replace(new_spec, key=target)
    if tempo is not None:
        if not TEMPO_MIN_BPM <= tempo <= TEMPO_MAX_BPM:
            raise SpecError("tempo", f"must be {TEMPO_MIN_BPM:g}-{TEMPO_MAX_BPM:g} BPM, got {tempo:g}")
        out.tempos.clear()
        out.tempos.append(Tempo(0, qpm=tempo))
        new_spec = replace(new_spec, tempo_bpm=tempo)
    parts = list(new_spec.parts)
    for name, word in (instruments or {}).items():
        part = _part(new_spec, name)
        try:
            instrument = lookup(word)
        except KeyError:
            raise SpecError("instrument", f"unknown instrument {word!r} for part {name!r}") from None
        # The part takes the new instrument's name (flute=violin: the track, the stem and --part say
        # violin), unless another part has that name already.
        taken = {p.name for p in parts if p is not part}
        renamed = instrument.part if instrument.part not in taken else part.name
        track = _track(out, part.name)
        track.program, track.name = instrument.program, renamed
        parts[parts.index(part)] = replace(part, name=renamed, instrument=instrument.name,
                                           program=instrument.program)
    return replace(new_spec, parts=parts), out
