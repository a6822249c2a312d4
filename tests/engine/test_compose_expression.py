"""The prompt's dynamics, scale, drum feel, mood and articulation reach the written MIDI (issue 16):
CC11 (expression) and CC1 (modulation) curves in sustained parts that follow the arc, read back with
mido from the SMF bytes; a named pentatonic scale is the only one played; four on the floor asked of a
style without it; a dark mood lower, a legato prompt held, a staccato one short. Real understanding,
the real trained models."""
from __future__ import annotations

import io
import itertools
import statistics
from dataclasses import replace

import mido
import pytest

from engine.compose.pipeline import SUSTAINED_PROGRAMS, compose, expression_curve
from engine.music.midi import score_to_smf
from engine.understand.prompt import Overrides, understand


def controller_curves(prompt: str, seed: int = 1) -> dict[str, dict[int, list[tuple[int, int]]]]:
    """Per track name: {controller: [(tick, value)...]}, as mido reads the clip's SMF bytes."""
    spec = understand(prompt, Overrides(seed=seed))
    midi = mido.MidiFile(file=io.BytesIO(score_to_smf(compose(spec))))
    curves: dict[str, dict[int, list[tuple[int, int]]]] = {}
    for track in midi.tracks:
        now, name, found = 0, "", {}
        for message in track:
            now += message.time
            if message.type == "track_name":
                name = message.name
            elif message.type == "control_change" and message.control in (1, 11):
                found.setdefault(message.control, []).append((now, message.value))
        curves[name] = found
    return curves


@pytest.mark.parametrize("prompt", [
    "strings and choir slowly swelling from soft to loud, 8 bars",
    "a pad and a flute that build up to a climax, 8 bars",
])
def test_a_crescendo_swells_expression_and_modulation_in_the_sustained_parts(prompt: str) -> None:
    curves = controller_curves(prompt)
    sustained = {name: c for name, c in curves.items() if 11 in c}
    assert sustained, f"no part carries CC11: {list(curves)}"
    for name, found in sustained.items():
        values = [v for _, v in found[11]]
        assert values == sorted(values) and values[-1] - values[0] >= 60, (name, values)
        modulation = [v for _, v in found[1]]
        assert modulation == sorted(modulation) and modulation[-1] > modulation[0], (name, modulation)


def test_a_fade_lowers_expression_to_the_end() -> None:
    curves = controller_curves("lush strings and an organ, fading out at the end, 8 bars")
    sustained = {name: c for name, c in curves.items() if 11 in c}
    assert {"strings", "organ"} <= set(sustained) or len(sustained) >= 2, list(curves)
    for name, found in sustained.items():
        values = [v for _, v in found[11]]
        assert values == sorted(values, reverse=True) and values[0] - values[-1] >= 60, (name, values)


def test_a_steady_clip_holds_one_expression_value_and_drums_and_piano_carry_none() -> None:
    curves = controller_curves("house groove with piano and strings, 4 bars")
    assert len(curves["strings"][11]) == 1
    assert not curves["drums"] and not curves["piano"]


def test_the_expression_curve_follows_a_swell_up_then_down() -> None:
    values = [cc11 for _, cc11, _ in expression_curve("swell", 8, 1920)]
    peak = values.index(max(values))
    assert 0 < peak < len(values) - 1 and values[0] < max(values) > values[-1]
    assert 45 not in SUSTAINED_PROGRAMS and 48 in SUSTAINED_PROGRAMS  # pizzicato is plucked, strings are held


@pytest.mark.parametrize(("prompt", "allowed"), [
    ("a pentatonic melody on flute with piano in A minor, 4 bars", {9, 0, 2, 4, 7}),     # A C D E G
    ("folk tune on the major pentatonic scale in D major, fiddle and guitar, 4 bars", {2, 4, 6, 9, 11}),
])
def test_an_asked_pentatonic_scale_is_the_only_one_played(prompt: str, allowed: set[int]) -> None:
    spec = understand(prompt, Overrides(seed=2))
    pitched = [n.pitch % 12 for t in compose(spec).tracks if not t.is_drum for n in t.notes]
    assert pitched and set(pitched) <= allowed, sorted(set(pitched) - allowed)
    assert any("pentatonic" in note for note in spec.notes)


def test_four_on_the_floor_asked_of_a_style_without_it_puts_a_kick_on_every_beat() -> None:
    spec = understand("funk groove with slap bass but four on the floor, 110 bpm, 2 bars", Overrides(seed=1))
    drums = next(t for t in compose(spec).tracks if t.is_drum and t.name == "drums")
    kicks = [n.time for n in drums.notes if n.pitch in (35, 36)]
    missing = [beat for beat in range(8) if not any(abs(k - beat * 480) <= 60 for k in kicks)]
    assert not missing, f"no kick on beats {missing}; kicks at {sorted(kicks)}"


def _melody(spec, name: str):
    return next(t for t in compose(spec).tracks if t.name == name)


def test_a_dark_mood_plays_the_tune_an_octave_lower_than_a_neutral_one() -> None:
    spec = understand("a piano melody in A minor, 4 bars", Overrides(seed=3))
    neutral = _melody(replace(spec, mood="neutral"), "piano")
    dark = _melody(replace(spec, mood="dark"), "piano")
    assert statistics.median(n.pitch for n in dark.notes) <= statistics.median(n.pitch for n in neutral.notes) - 12


def test_legato_words_hold_the_notes_and_staccato_words_shorten_them() -> None:
    spec = understand("a piano melody in C major, 4 bars", Overrides(seed=4))

    def mean_length(said: str) -> float:
        track = next(t for t in compose(replace(spec, prompt=spec.prompt + said)).tracks if t.name == "piano")
        return statistics.mean(n.duration for n in track.notes)

    legato, plain, staccato = mean_length(", smooth and legato"), mean_length(""), mean_length(", staccato")
    assert legato > plain > staccato, (legato, plain, staccato)


@pytest.mark.parametrize("prompt", [
    "80s synth pop with arpeggiated synths and a driving bassline",
    "piano ballad with broken chords on the piano and strings, 8 bars",
])
def test_an_asked_arpeggio_plays_the_chord_parts_one_note_at_a_time_on_the_sixteenths(prompt: str) -> None:
    spec = understand(prompt, Overrides(seed=1))
    chord_parts = {p.name for p in spec.parts if p.role in ("chords", "keys", "pad")}
    assert chord_parts, spec.parts
    plain = compose(replace(spec, prompt="a band"))
    score = compose(spec)
    sixteenth = score.ticks_per_quarter // 4
    for track in (t for t in score.tracks if t.name in chord_parts):
        onsets = [n.time for n in track.notes]
        assert len(onsets) == len(set(onsets)), f"{track.name}: two notes struck at once"
        assert all(t % sixteenth == 0 for t in onsets), track.name
        before = next(t for t in plain.tracks if t.name == track.name)
        assert {n.pitch for n in track.notes} <= {n.pitch for n in before.notes}, "only the chord's own notes"
        ordered = sorted(track.notes, key=lambda n: n.time)
        assert all(a.time + a.duration <= b.time for a, b in itertools.pairwise(ordered)), "one note at a time"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_note_of_a_band_with_hand_percussion_rings_past_the_clips_last_bar(seed: int) -> None:
    spec = understand("Make it 20 bars long: afrobeat with horns, guitar and congas", Overrides(seed=seed))
    score = compose(spec)
    end = spec.bars * round(spec.meter.quarters_per_bar * score.ticks_per_quarter)
    late = [(t.name, n.time, n.end) for t in score.tracks for n in t.notes if n.end > end]
    assert not late, late[:5]


def _onsets_per_half_bar(track, bar_ticks: int, bars: range) -> list[int]:
    return [len({n.time for n in track.notes if n.time // (bar_ticks // 2) == half})
            for half in range(bars.start * 2, bars.stop * 2)]


def test_a_crescendos_comping_holds_its_chords_while_quiet_and_plays_its_rhythm_once_loud() -> None:
    prompt = "Dramatic orchestral piece, soft and slow at first, building to a powerful crescendo"
    spec = understand(prompt, Overrides(seed=1, bars=8))
    assert spec.arc == "crescendo"
    brass = next(p for p in spec.parts if p.role == "chords")
    score = compose(spec)
    track = next(t for t in score.tracks if t.name == brass.name)
    bar_ticks = score.ticks_per_quarter * 4
    assert all(count <= 1 for count in _onsets_per_half_bar(track, bar_ticks, range(0, 3)))  # one chord a half bar
    held = [n for n in track.notes if n.time < 3 * bar_ticks]
    assert held and min(n.duration for n in held) >= bar_ticks // 4                          # held, not struck
    assert max(_onsets_per_half_bar(track, bar_ticks, range(4, 8))) >= 3                    # loud: its rhythm again
    steady = compose(replace(spec, arc="steady"))
    same_part = next(t for t in steady.tracks if t.name == brass.name)
    assert max(_onsets_per_half_bar(same_part, bar_ticks, range(0, 3))) >= 2                # steady: never held


def test_the_prompts_energy_sets_the_level_of_the_corpus_models_voices() -> None:
    spec = understand("Solo cello lament in C minor, rubato feel, 12 bars", Overrides(seed=1))
    assert spec.style == "classical" and spec.energy < 0.5

    def mean_velocity(energy: float) -> float:
        track = compose(replace(spec, energy=energy)).tracks[0]
        return statistics.mean(n.velocity for n in track.notes)

    calm, neutral, lively = mean_velocity(spec.energy), mean_velocity(0.5), mean_velocity(0.9)
    assert calm < neutral - 3 and lively > neutral + 5, (calm, neutral, lively)
