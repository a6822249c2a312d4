"""What the prompt says reaches the notes (issue 16): percussion parts on their own keys, arcs that
bring the rhythm section in and out, full keyboard chords, four on the floor, energy and mood in the
model's request. Real understanding, the real trained model, notes read from the Score."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from engine.catalog import instruments
from engine.compose.pipeline import arc_curve, compose, energy_density, model_request, plan_voices
from engine.understand.prompt import Overrides, understand


def tracks(prompt: str, seed: int = 1):
    spec = understand(prompt, Overrides(seed=seed))
    return spec, {t.name: t for t in compose(spec).tracks}


def test_congas_bongos_and_clave_play_their_own_percussion_keys_beside_the_kit() -> None:
    spec, by_name = tracks("Afro-Cuban groove with congas, bongos and clave, 100 bpm, 4 bars")
    for name in ("congas", "bongos", "claves"):
        track = by_name[name]
        keys = set(instruments.by_part()[name].keys)
        assert track.is_drum and track.notes and {n.pitch for n in track.notes} <= keys, name
    assert by_name["drums"].notes, "the kit still plays"


def test_taiko_is_general_midi_program_116_struck_on_the_tonic_and_fifth() -> None:
    spec, by_name = tracks("Epic trailer cue with taiko and brass in D minor, 4 bars")
    taiko = by_name["taiko"]
    assert taiko.program == 116 and not taiko.is_drum and taiko.notes
    assert {n.pitch % 12 for n in taiko.notes} <= {2, 9}  # D and A
    assert "strings" in by_name, "the style's strings stay when taiko and brass are named"


@pytest.mark.parametrize(("arc", "silent"), [("crescendo", "start"), ("decrescendo", "end"), ("swell", "both"),
                                           ("dip", "middle")])
def test_an_arc_brings_the_drums_in_or_takes_them_out(arc: str, silent: str) -> None:
    words = {"crescendo": "building from soft to loud", "decrescendo": "fading out at the end",
             "swell": "that builds then fades", "dip": "with a breakdown halfway"}[arc]
    spec, by_name = tracks(f"house groove {words}, 8 bars")
    assert spec.arc == arc
    bar = round(spec.meter.quarters_per_bar * 480)
    drum_bars = {n.time // bar for n in by_name["drums"].notes}
    if silent in ("start", "both"):
        assert 0 not in drum_bars and 1 not in drum_bars
    if silent in ("end", "both"):
        assert 7 not in drum_bars and 6 not in drum_bars
    if silent == "middle":  # a breakdown: out for the middle quarter, back for the end
        assert not drum_bars & {3, 4} and {0, 7} <= drum_bars
    assert drum_bars, "the drums play somewhere"


def test_a_swell_is_loudest_in_the_middle() -> None:
    curve = arc_curve("swell", 8)
    assert curve.argmax() in (3, 4) and curve[0] < curve[3] and curve[-1] < curve[4]


def test_a_dip_is_quietest_in_the_middle_and_comes_back_louder() -> None:
    curve = arc_curve("dip", 8)
    assert curve.argmin() in (3, 4) and curve[0] > curve[3] and curve[-1] > curve[4] and curve[-1] >= curve[0]


def test_jazzy_rhodes_chords_are_four_note_chords_not_dyads() -> None:
    _, by_name = tracks("Jazzy Rhodes chords over a slow hip hop beat, 80 bpm, 4 bars")
    per_onset = Counter(n.time for n in by_name["epiano"].notes)
    assert min(per_onset.values()) >= 3 and Counter(per_onset.values()).most_common(1)[0][0] == 4


def test_eurodance_has_four_on_the_floor() -> None:
    spec, by_name = tracks("Eurodance anthem, 140 bpm, A minor, 2 bars")
    kicks = [n.time for n in by_name["drums"].notes if n.pitch in (35, 36)]
    # the drum model plays a drummer's micro-timing: a kick within a 32nd note of every beat
    missing = [beat for beat in range(8) if not any(abs(k - beat * 480) <= 60 for k in kicks)]
    assert not missing, f"no kick on beats {missing}; kicks at {sorted(kicks)}"


def test_energy_moves_the_density_the_model_is_asked_for_and_tension_allows_chromatic_notes() -> None:
    calm = understand("a calm, quiet lullaby on piano", Overrides(seed=1))
    wild = understand("an explosive, intense, hard-driving rave", Overrides(seed=1))
    assert calm.energy < 0.3 < 0.75 < wild.energy
    assert energy_density(1, calm) == 0 and energy_density(1, wild) == 2
    tense = understand("Tense horror cue, sparse and dissonant, low cello drones", Overrides(seed=1))
    assert tense.mood == "tense" and model_request(tense, plan_voices(tense.parts)).chromatic


def test_a_sparse_tense_cue_is_sparse() -> None:
    spec, by_name = tracks("Tense horror cue, sparse and dissonant, low cello drones")
    notes_per_bar = sum(len(t.notes) for t in by_name.values()) / spec.bars
    assert "drums" not in by_name and notes_per_bar < 8
    assert np.isfinite(notes_per_bar)
