"""The clip's form and the style's data shape the drum part: fills where the form's phrases end,
crashes where its sections start, busier B sections and builds, metal's double kick, reggae's one
drop, and no band kit in styles whose percussion is an orchestra's. All through compose() with the
committed drum checkpoint."""
import numpy as np
import pytest

from engine.catalog import styles
from engine.compose import form
from engine.compose.drums import form_places
from engine.compose.learned import settings
from engine.compose.pipeline import compose
from engine.evaluation import drums as drum_eval
from engine.music.midi import score_to_smf, smf_to_score
from engine.understand.prompt import Overrides, understand

KICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH = 0, 1, 2, 3, 7  # voices of the eval's 9-voice grid
KIT_ONLY_KEYS = {38, 40, 37, 42, 44, 46, 51, 59}  # snare, rim, hi-hats, ride: a band kit's time-keepers


def _clip(prompt: str, **overrides):
    spec = understand(prompt, Overrides(**overrides))
    score = smf_to_score(score_to_smf(compose(spec)))  # read back from the MIDI file's bytes
    drums = [t for t in score.tracks if t.is_drum]
    grid = drum_eval.grid_of_score(score, spec.meter.quarters_per_bar, spec.bars)
    return spec, drums, grid


def _bars(grid):
    return grid.hits[: grid.bars * grid.steps_per_bar].reshape(grid.bars, grid.steps_per_bar, -1)


def _clip_form(spec):
    style = styles.get(spec.style)
    return form.plan(spec.bars, spec.key, list(style.progressions), spec.seed, settings(spec.style).loop)


def test_a_metal_clip_plays_16th_note_kicks_in_most_bars():
    kick_bars = total = 0
    kick_velocity = []
    for seed in range(3):
        spec, _, grid = _clip("Heavy metal riff in E minor with distorted guitars and double kick drums at 180 bpm",
                              seed=seed)
        assert spec.style == "metal"
        kicks = _bars(grid)[:, :, KICK].sum(axis=1)
        kick_bars += int((kicks >= 12).sum())
        total += grid.bars
        kick_velocity += list(grid.velocity[grid.hits[:, KICK], KICK])
    assert kick_bars / total >= 0.6, (kick_bars, total)
    assert np.median(kick_velocity) >= 90, "a double kick is played hard, not ghosted"


def test_a_reggae_clip_plays_the_one_drop_kick_and_snare_on_3_nothing_on_1_in_most_bars():
    drop_bars = total = 0
    drop_velocity = []
    for seed in range(3):
        spec, _, grid = _clip("Reggae one drop groove with skanking organ and deep bass, 76 BPM, G major", seed=seed)
        assert spec.style == "reggae"
        bars = _bars(grid)
        one_drop = bars[:, 8, KICK] & bars[:, 8, SNARE] & ~bars[:, 0, KICK] & ~bars[:, 0, SNARE]
        drop_bars += int(one_drop.sum())
        total += grid.bars
        velocity = grid.velocity[: grid.bars * 16].reshape(grid.bars, 16, -1)
        drop_velocity += list(velocity[one_drop, 8, KICK])
    assert drop_bars / total >= 0.6, (drop_bars, total)
    assert np.median(drop_velocity) >= 90, "the drop is accented, not a ghost kick"


def test_fills_land_where_the_forms_phrases_end_not_every_fourth_bar():
    # 32 bars: the form's phrases are 8 bars long, so bars 4, 12, 20, 28 are inside a phrase
    ends, mids = (7, 15, 23, 31), (3, 11, 19, 27)
    busy_end, busy_mid, fills_end, fills_mid = [], [], 0, 0
    for seed in range(4):
        spec, _, grid = _clip("rock band with drums and bass", seed=seed, bars=32, tempo_bpm=120.0)
        assert tuple(i for i, b in enumerate(_clip_form(spec).bars) if b.phrase_end) == ends
        busy = _bars(grid)[:, :, [SNARE, 4, 5, 6]].sum(axis=(1, 2))  # snare and toms: what a fill plays
        busy_end += busy[list(ends)].tolist()
        busy_mid += busy[list(mids)].tolist()
        flags, _ = drum_eval.bar_flags(grid.hits, grid.steps_per_bar, "beat")
        fills_end += int(flags[list(ends)].sum())
        fills_mid += int(flags[list(mids)].sum())
    assert np.mean(busy_end) > 1.5 * np.mean(busy_mid), (busy_end, busy_mid)
    assert fills_end > fills_mid, (fills_end, fills_mid)


def test_a_new_section_opens_with_a_crash_on_its_downbeat():
    for seed in range(3):
        spec, drums, grid = _clip("rock band with drums and bass", seed=seed, bars=12, tempo_bpm=120.0)
        clip_form = _clip_form(spec)
        assert clip_form.labels == "AAB"
        starts = [b for b, s in enumerate(form_places(clip_form)["section_start"]) if s]
        assert starts == [0, 8]
        bars = _bars(grid)
        for bar in starts:
            assert bars[bar, 0, CRASH] and bars[bar, 0, KICK], (seed, bar)


def test_a_b_section_plays_busier_and_louder_than_its_a_sections():
    a_hits, b_hits, a_vel, b_vel = [], [], [], []
    for seed in range(6):
        spec, _, grid = _clip("rock band with drums and bass", seed=seed, bars=12, tempo_bpm=120.0)
        bars = _bars(grid)
        vel = grid.velocity[: grid.bars * 16].reshape(grid.bars, 16, -1)
        for fb in _clip_form(spec).bars:
            if fb.phrase_end or fb.position == 0:  # fills and crashes aside: the groove bars
                continue
            (b_hits if fb.section == "B" else a_hits).append(bars[fb.index].sum())
            backbeat = bars[fb.index][[4, 12], SNARE]  # louder: the backbeat's accents (more ghost notes are soft)
            (b_vel if fb.section == "B" else a_vel).extend(vel[fb.index][[4, 12], SNARE][backbeat])
    assert np.mean(b_hits) > 1.1 * np.mean(a_hits), (np.mean(a_hits), np.mean(b_hits))
    assert np.mean(b_vel) > np.mean(a_vel), (np.mean(a_vel), np.mean(b_vel))


def test_a_crescendo_builds_density_not_only_velocity():
    early, late = [], []
    for seed in range(3):
        spec, _, grid = _clip("funk band with drums and bass, building crescendo", seed=seed, bars=16, tempo_bpm=100.0)
        assert spec.arc == "crescendo"
        per_bar = _bars(grid)[:, :, [CLOSED_HAT, OPEN_HAT, SNARE, KICK]].sum(axis=(1, 2))
        early += list(per_bar[4:7])   # the kit enters after the first quarter; phrase-end bar 7 aside
        late += list(per_bar[12:15])
    assert np.mean(late) > np.mean(early), (np.mean(early), np.mean(late))


@pytest.mark.parametrize("prompt", ["Dramatic orchestral piece with a crescendo, 16 bars",
                                    "Epic cinematic trailer music with brass, strings and taiko drums, 16 bars",
                                    "classical string quartet with percussion, 8 bars"])
def test_orchestral_prompts_get_orchestral_percussion_not_a_band_kit(prompt):
    spec, drums, _ = _clip(prompt, seed=1)
    assert not styles.get(spec.style).drums.kit
    keys = {n.pitch for t in drums for n in t.notes}
    assert keys, "the percussion part plays"
    assert not keys & KIT_ONLY_KEYS, sorted(keys & KIT_ONLY_KEYS)


def test_a_film_score_swells_a_cymbal_into_a_new_section_and_strikes_at_phrase_starts():
    spec, drums, _ = _clip("orchestral film score", seed=0, bars=16)
    clip_form = _clip_form(spec)
    places = form_places(clip_form)
    bar_ticks = spec.meter.bar_ticks()
    kit = next(t for t in drums if t.name == "drums")
    for bar, end in enumerate(places["section_end"]):
        if end:
            swell = [n.velocity for n in kit.notes
                     if n.pitch == 49 and bar * bar_ticks <= n.time < (bar + 1) * bar_ticks]
            assert len(swell) >= 8 and swell == sorted(swell) and swell[-1] > 2 * swell[0], swell
    assert any(places["section_end"]), clip_form.labels
    for bar, start in enumerate(places["phrase_start"]):
        if start:
            assert any(n.pitch == 35 and n.time == bar * bar_ticks for n in kit.notes), bar


def test_a_style_rule_naming_an_unknown_voice_or_cell_is_refused_with_what_is_accepted():
    from engine.catalog.styles import _drums

    with pytest.raises(ValueError, match="accepted: kick, snare"):
        _drums({"name": "x", "drums": {"rules": {"cowbell": "x" * 16}}})
    with pytest.raises(ValueError, match="16 cells of X"):
        _drums({"name": "x", "drums": {"rules": {"kick": "x" * 15}}})
    with pytest.raises(ValueError, match="accepted: section_start"):
        _drums({"name": "x", "drums": {"hits": [{"at": "chorus", "key": 49}]}})


def test_a_nearly_empty_phrase_end_bar_keeps_the_groove_in_its_first_half():
    # lo-fi hip hop, seed 1: the model drops out at bar 8 (three hi-hats); the bar keeps the groove's first half
    thin = []
    for seed in range(3):
        spec, _, grid = _clip("Lo-fi hip hop beat, 85 bpm, dusty electric piano chords in Bb major, laid back swing",
                              seed=seed)
        ends = [i for i, b in enumerate(_clip_form(spec).bars) if b.phrase_end]
        per_bar = _bars(grid).sum(axis=(1, 2))
        usual = np.median(np.delete(per_bar, ends))
        thin += [(seed, b + 1, int(per_bar[b])) for b in ends if per_bar[b] < 0.35 * usual]
    assert not thin, thin


def test_only_a_thin_phrase_end_bar_takes_the_last_groove_bars_first_half():
    from engine.compose.drums import keep_groove_in_thin_fills
    from engine.model.drums import DrumHit

    groove_bars = (0, 1, 2, 4, 5, 6)
    groove = [DrumHit(b, s, 2, 80 + b, 0.1) for b in groove_bars for s in range(0, 16, 2)]
    groove += [DrumHit(b, s, 1, 100, -0.05) for b in groove_bars for s in (4, 12)]
    thin_fill = [DrumHit(3, 14, 2, 60, 0.0)]  # bar 4 of 8: one hi-hat
    busy_fill = [DrumHit(7, s, 5, 90, 0.0) for s in range(16)]
    hits = sorted(groove + thin_fill + busy_fill, key=lambda h: (h.bar, h.step, h.voice))
    fill = [False, False, False, True, False, False, False, True]
    out = keep_groove_in_thin_fills(hits, 8, 16, fill)
    bar3 = [(h.step, h.voice, h.velocity, h.offset) for h in out if h.bar == 3]
    from_bar2 = [(h.step, h.voice, h.velocity, h.offset) for h in groove if h.bar == 2 and h.step < 8]
    assert sorted(bar3) == sorted(from_bar2 + [(14, 2, 60, 0.0)])  # the groove's first half, the model's end
    assert [h for h in out if h.bar == 7] == busy_fill  # a fill the model played stays as played
    assert [h for h in out if h.bar not in (3, 7)] == [h for h in hits if h.bar not in (3, 7)]


RIDE_KEYS, STICK_HAT_KEYS, PEDAL_HAT, SIDE_STICK = {51, 53, 59}, {42, 46}, 44, 37
JAZZ_PROMPTS = ["Jazz swing trio, walking upright bass, ride cymbal and piano comping, C major, 160 bpm",
                "Fast bebop jazz at 220 bpm with saxophone, piano and upright bass in Bb major"]


def _kit_bars(spec, drums):
    """Each bar's kit notes as (pitch, onset in beats from the bar's downbeat, velocity)."""
    tpq = 480  # the clip's resolution (engine/config.py TICKS_PER_QUARTER), read back from the file
    bar_ticks = round(spec.meter.quarters_per_bar * tpq)
    bars = [[] for _ in range(spec.bars)]
    for note in (n for track in drums for n in track.notes):
        bar = min(spec.bars - 1, int(note.time / bar_ticks + 1 / 32))  # a stroke played early stays in its bar
        bars[bar].append((note.pitch, (note.time - bar * bar_ticks) / tpq, note.velocity))
    return bars


@pytest.mark.parametrize("prompt", JAZZ_PROMPTS)
def test_a_jazz_clip_keeps_time_on_the_ride_with_the_swung_skip_note_and_the_hat_foot_on_2_and_4(prompt):
    spang = groove_bars = 0
    for seed in range(3):
        spec, drums, _ = _clip(prompt, seed=seed)
        assert spec.style == "jazz" and spec.swing
        for bar, notes in zip(_clip_form(spec).bars, _kit_bars(spec, drums), strict=True):
            if bar.phrase_end:
                continue  # a fill
            groove_bars += 1
            ride = [beat for pitch, beat, _ in notes if pitch in RIDE_KEYS]
            assert not [n for n in notes if n[0] in STICK_HAT_KEYS], (seed, bar.index, "time is kept on the ride")
            foot = {round(beat) for pitch, beat, _ in notes if pitch == PEDAL_HAT and abs(beat - round(beat)) < 0.2}
            assert {1, 3} <= foot, (seed, bar.index, "the hi-hat foot on 2 and 4")
            on_beats = {round(b) for b in ride if abs(b - round(b)) < 0.2} & {0, 1, 2, 3}
            skip = [b for b in ride if int(b) in (1, 3) and 0.55 <= b - int(b) <= 0.8]  # swung, not the 8th
            spang += len(on_beats) >= 3 and bool(skip)
    assert spang / groove_bars >= 0.75, (spang, groove_bars)


def _clave_steps(spec, drums, key):
    """Each bar's 16th steps struck on ``key``."""
    return [sorted({round(beat * 4) % 16 for pitch, beat, _ in notes if pitch == key})
            for notes in _kit_bars(spec, drums)]


@pytest.mark.parametrize(("prompt", "style", "two_side"), [
    ("salsa with piano montuno, congas and bass", "latin", [4, 8]),  # son clave 3-2: 1, 2&, 4 | 2, 3
    ("Latin salsa montuno on piano with congas, timbales and bass, 190 bpm, C major", "latin", [4, 8]),
    ("Bossa nova with nylon guitar, soft brushes and upright bass in F major at 132 bpm", "bossa nova", [4, 10]),
])
@pytest.mark.parametrize("quantize", [True, False])
def test_a_latin_clip_plays_its_clave_on_the_rim_from_each_phrase_start_through_its_fills(prompt, style, two_side,
                                                                                            quantize):
    for seed in range(2):
        spec, drums, _ = _clip(prompt, seed=seed, quantize=quantize)
        assert spec.style == style
        clip_form = _clip_form(spec)
        assert any(bar.phrase_end for bar in clip_form.bars)  # the clave runs through fill bars too
        for bar, steps in zip(clip_form.bars, _clave_steps(spec, drums, SIDE_STICK), strict=True):
            want = [0, 6, 12] if bar.position % 2 == 0 else two_side  # the three side where each phrase starts
            assert steps == want, (seed, bar.index, bar.position, steps)
        rim = [v for notes in _kit_bars(spec, drums) for pitch, _, v in notes if pitch == SIDE_STICK]
        assert np.median(rim) >= 50, "a clave is heard, not ghosted"
        assert any(pitch == 38 for notes in _kit_bars(spec, drums) for pitch, _, _ in notes), \
            "the drummer's own snare still plays around the clave"


def test_a_style_time_keeper_or_timeline_that_is_not_valid_is_refused_with_what_is_accepted():
    from engine.catalog.styles import _drums

    with pytest.raises(ValueError, match="time_keeper = 'cowbell'; accepted: one of kick"):
        _drums({"name": "x", "drums": {"time_keeper": "cowbell"}})
    with pytest.raises(ValueError, match="timeline key = 200; accepted: a General MIDI percussion key"):
        _drums({"name": "x", "drums": {"timeline": {"key": 200, "cells": "x" * 16}}})
    with pytest.raises(ValueError, match="16 cells per 4/4 bar"):
        _drums({"name": "x", "drums": {"timeline": {"key": 75, "cells": "x-----x-----x---x-----"}}})
    with pytest.raises(ValueError, match="timeline voice = 'clave'; accepted: kick"):
        _drums({"name": "x", "drums": {"timeline": {"voice": "clave", "key": 75, "cells": "x" * 16}}})
