"""Render: exact lengths, sample 0 = first downbeat, tails, loudness and true peak, effects from data.

Measurements use independent tools where one exists: pyloudnorm's meter for loudness, scipy's
resample_poly (a different interpolator from plugin_host.mix) for the true peak.
"""
from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from plugin_host import effects
from plugin_host.config import TAIL_MAX_SECONDS
from plugin_host.render import RenderOptionError, render
from tests.plugin_host.clip_scores import ROLES, clip_frames, make_score

RATE = 48000


def _render(score, **options):
    options.setdefault("isolate", False)
    return render(score, RATE, roles=ROLES, **options)


@pytest.fixture(scope="module")
def cut(score):
    return _render(score, tail="cut", style="pop")


@pytest.fixture(scope="module")
def ring(score):
    return _render(score, tail="ring", style="pop")


@pytest.fixture(scope="module")
def loop(score):
    return _render(score, tail="loop", style="pop")


def _independent_true_peak_dbtp(audio: np.ndarray) -> float:
    up = resample_poly(audio.astype(np.float64), 8, 1, axis=0)
    return 20 * np.log10(np.abs(up).max())


def _first_onset(audio: np.ndarray, rate: int) -> int:
    """First sample where a centred 1 ms energy envelope rises past 1% of the stem's peak energy."""
    window = rate // 1000
    energy = np.convolve((audio.astype(np.float64) ** 2).sum(axis=1), np.ones(window) / window, mode="same")
    return int(np.argmax(energy > 0.01 * energy.max()))


@pytest.mark.parametrize(("tempo", "meter", "bars"), [(123.0, (4, 4), 4), (97.0, (7, 8), 3), (60.0, (3, 4), 2)])
def test_every_stem_is_bars_times_beats_times_60_over_tempo(tempo, meter, bars):
    score = make_score(tempo, meter, bars)
    stems = render(score, RATE, bars=bars, isolate=False)
    # The file stores microseconds per quarter: the length a DAW computes from that tempo...
    stored_tempo = 6e7 / score.tempos[0].mspq
    assert stems.frames == clip_frames(stored_tempo, meter, bars, RATE)
    # ...which is within a sample of the nominal bars x beats x 60 / tempo.
    assert abs(stems.frames - clip_frames(tempo, meter, bars, RATE)) <= 1
    assert stems.clip_frames == stems.frames
    assert {audio.shape for audio in stems.parts.values()} == {(stems.frames, 2)}


def test_first_drum_hit_is_at_sample_zero(cut):
    onset = _first_onset(cut.parts["drums"], RATE)
    assert onset <= RATE // 1000, f"first drum onset at sample {onset}, more than 1 ms after the downbeat"


def test_mix_loudness_and_true_peak(cut):
    loudness = pyloudnorm.Meter(RATE).integrated_loudness(cut.mix.astype(np.float64))
    assert abs(loudness - (-14.0)) <= 0.5, loudness
    assert _independent_true_peak_dbtp(cut.mix) <= -1.0 + 0.1  # 8x interpolation reads a little above 4x
    assert cut.true_peak_dbtp <= -1.0


def test_every_stem_is_under_the_true_peak_ceiling_too(cut, ring, loop):
    # a stem can peak above the mix where parts cancel; the shared limiter curve must catch that
    for stems in (cut, ring, loop):
        for name, audio in stems.parts.items():
            assert _independent_true_peak_dbtp(audio) <= -1.0 + 0.1, name


def test_loudness_target_is_an_option(score):
    quiet = _render(score, loudness_lufs=-23.0)
    assert abs(pyloudnorm.Meter(RATE).integrated_loudness(quiet.mix.astype(np.float64)) + 23.0) <= 0.5


def test_no_nan_no_inf_no_clipping_and_stems_add_up_to_the_mix(cut, ring, loop):
    for stems in (cut, ring, loop):
        for name, audio in [*stems.parts.items(), ("mix", stems.mix)]:
            assert audio.dtype == np.float32
            assert np.isfinite(audio).all(), name
            assert np.abs(audio).max() < 1.0, name
        total = np.sum(list(stems.parts.values()), axis=0)
        np.testing.assert_allclose(total, stems.mix, atol=1e-4)


def test_cut_ends_on_silence(cut):
    assert np.abs(cut.mix[-1]).max() == 0.0
    assert np.abs(cut.mix[-RATE // 10:-RATE // 50]).max() > 0.01  # a fade, not a gap


def test_ring_appends_the_tail(cut, ring):
    assert ring.clip_frames == cut.frames
    assert cut.frames < ring.frames <= cut.frames + round((TAIL_MAX_SECONDS + 0.02) * RATE)
    assert {audio.shape[0] for audio in ring.parts.values()} == {ring.frames}
    tail = ring.mix[ring.clip_frames:]
    assert np.abs(tail[:RATE // 10]).max() > 0.01  # reverb and releases are still sounding past the bar line
    assert np.abs(ring.mix[-1]).max() == 0.0


def test_loop_wraps_the_tail_onto_the_start_without_a_click(cut, loop):
    assert loop.frames == cut.frames
    for name, audio in [*loop.parts.items(), ("mix", loop.mix)]:
        inside = np.abs(np.diff(audio, axis=0)).max(axis=0)
        seam = np.abs(audio[0] - audio[-1])
        assert (seam <= inside).all(), f"{name}: seam jump {seam} larger than any inside the clip {inside}"
        near = np.abs(np.diff(np.concatenate([audio[-480:], audio[:480]]), axis=0))
        near = np.delete(near, 479, axis=0).max(axis=0)  # the 10 ms on either side, the seam itself left out
        # a hit on the downbeat starts with a step of its own (FluidR3's kick: 0.31 at sample 0); the seam
        # may be as large as that step in the cut clip, which has no wrapped tail, but no larger
        attack = np.abs(cut.mix[0] if name == "mix" else cut.parts[name][0])
        allowed = np.maximum(near * 1.5, attack * 1.05) + 1e-4
        assert (seam <= allowed).all(), f"{name}: seam jump {seam} stands out from its neighbours {near}"
    # the wrap is real: the loop's start carries the tail that the cut version does not have
    assert np.abs(loop.parts["chords"][:RATE // 100]).max() > 0


def test_effect_chains_come_from_style_data():
    assert [e["type"] for e in effects.role_mix("chords", "metal").effects].count("Distortion") == 1
    assert "Distortion" not in [e["type"] for e in effects.role_mix("chords", "pop").effects]
    # a style the data file does not mention plays the role defaults
    assert effects.role_mix("bass", "no such style") == effects.role_mix("bass", None)
    with pytest.raises(effects.EffectsDataError, match="not one of .*Reverb"):
        effects.build_chain([{"type": "Eval"}], 120.0)


def test_style_changes_the_sound(score):
    pop = _render(score, style="pop")
    metal = _render(score, style="metal")

    def crest_db(audio):  # peak over RMS: a distortion flattens the waveform
        mono = audio.mean(axis=1)
        return 20 * np.log10(np.abs(mono).max() / np.sqrt(np.mean(mono ** 2)))

    def flatness(audio):  # geometric over arithmetic mean power, 100 Hz-8 kHz: harmonics fill the gaps
        power = np.abs(np.fft.rfft(audio.mean(axis=1))) ** 2
        freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
        band = power[(freqs > 100) & (freqs < 8000)] + 1e-20
        return np.exp(np.mean(np.log(band))) / np.mean(band)

    assert crest_db(metal.parts["chords"]) < crest_db(pop.parts["chords"]) - 4.0
    assert flatness(metal.parts["chords"]) > 3 * flatness(pop.parts["chords"])


def test_roles_from_the_midi_program_when_none_are_given(score):
    assert effects.role_for_program(33, False) == "bass"
    assert effects.role_for_program(0, True) == "drums"
    assert effects.role_for_program(89, False) == "pad"
    stems = render(score, RATE, isolate=False)
    assert list(stems.parts) == ["drums", "bass", "chords", "melody"]


def test_bad_options_name_the_option(score, tmp_path):
    with pytest.raises(RenderOptionError, match="tail: must be one of cut, ring, loop"):
        render(score, RATE, tail="fade")
    with pytest.raises(RenderOptionError, match="soundfont: .* is not a file"):
        render(score, RATE, soundfont=tmp_path / "none.sf2")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(RenderOptionError, match="not an .sf2 or .sf3"):
        render(score, RATE, soundfont=tmp_path / "notes.txt")
    with pytest.raises(RenderOptionError, match="loudness_lufs: must be -40 to -5"):
        render(score, RATE, loudness_lufs=0.0)
    with pytest.raises(RenderOptionError, match="plugins: bass=.*no such plugin"):
        render(score, RATE, plugins={"bass": str(tmp_path / "Nope.vst3")})


def test_any_soundfont_file_can_be_named(score, tmp_path):
    from plugin_host.soundfont import default_soundfont

    copy = tmp_path / "MyFont.sf2"
    copy.write_bytes(default_soundfont().read_bytes())
    stems = _render(score, style="pop", soundfont=copy)
    original = _render(score, style="pop", soundfont=default_soundfont())
    np.testing.assert_array_equal(stems.mix, original.mix)  # the same font by another path: the same audio


def test_roles_are_panned_as_the_data_says(cut):
    def balance_db(audio):  # left over right
        return 10 * np.log10(np.mean(audio[:, 0] ** 2) / np.mean(audio[:, 1] ** 2))
    left, right = effects.pan_gains(effects.role_mix("chords", "pop").pan)
    assert effects.role_mix("chords", "pop").pan < 0
    assert balance_db(cut.parts["chords"]) == pytest.approx(20 * np.log10(left / right), abs=1.5)
    assert abs(balance_db(cut.parts["bass"])) < 0.5
    with pytest.raises(effects.EffectsDataError, match="pan must be -1"):
        effects.pan_gains(1.5)


def test_stems_of_one_percussion_section_share_the_drum_level(score):
    # a conga track beside the kit: the two are one section, each 10*log10(2) dB under the drum level,
    # so the melody keeps its distance from the percussion as a whole (pyloudnorm measures the stems)
    two_drums = score.copy()
    congas = two_drums.tracks[0].copy()
    congas.name = "congas"
    for note in congas.notes:
        note.pitch = 63
    two_drums.tracks.append(congas)
    stems = render(two_drums, RATE, roles={**ROLES, "congas": "drums"}, style="pop", tail="cut", isolate=False)
    meter = pyloudnorm.Meter(RATE)
    level = {name: meter.integrated_loudness(audio.astype(np.float64)) for name, audio in stems.parts.items()}
    section = effects.role_mix("drums", "pop").level_lufs - 10 * np.log10(2)
    melody = effects.role_mix("melody", "pop").level_lufs
    for drum in ("drums", "congas"):
        assert level["melody"] - level[drum] == pytest.approx(melody - section, abs=0.7), level
    assert level["melody"] - level["bass"] == pytest.approx(melody - effects.role_mix("bass", "pop").level_lufs,
                                                            abs=0.7), level
