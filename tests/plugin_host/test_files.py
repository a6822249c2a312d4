"""Rendered clips as files, through the real CLI and a real engine process, read back by other readers.

soundfile (libsndfile) and the standard library's ``wave`` read every WAV; the bext chunk is
walked here with ``struct``, independently of plugin_host/encode.py; clip.png (drawn with Pillow) is read by matplotlib.
"""
from __future__ import annotations

import struct
import subprocess
import sys
import wave
from pathlib import Path

import grpc
import numpy as np
import pytest
import soundfile

from bridge.client import RequestRejected

ROOT = Path(__file__).resolve().parents[2]

TEMPO, BARS, AT = 100, 4, 5


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`cadenza ARGS` in a subprocess, from this worktree, as a user would run it."""
    return subprocess.run([sys.executable, "-m", "bridge.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


def _time_reference(path: Path) -> int | None:
    """bext TimeReference (offset 338 of the chunk body: 256+32+32+10+8 bytes in), walked chunk by chunk."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    at = 12
    while at + 8 <= len(data):
        chunk, size = data[at:at + 4], struct.unpack_from("<I", data, at + 4)[0]
        if chunk == b"bext":
            low, high = struct.unpack_from("<II", data, at + 8 + 338)
            return low + (high << 32)
        at += 8 + size + (size & 1)
    return None


@pytest.fixture(scope="module")
def wav_clip(engine_process, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clip") / "funk"
    done = run_cli("generate", "funk groove with slap bass, drums and clavinet", "--out", str(out), "--quiet",
                   "--tempo", str(TEMPO), "--bars", str(BARS), "--meter", "4/4", "--at", str(AT),
                   "--engine", engine_process.target)
    assert done.returncode == 0, done.stderr
    return out


def test_every_wav_reads_back_with_the_expected_rate_channels_and_length(wav_clip):
    frames = round(BARS * 4 * 60 / TEMPO * 48000)
    files = [wav_clip / "mix.wav", *sorted((wav_clip / "stems").glob("*.wav"))]
    assert len(files) >= 4
    for path in files:
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (48000, 2, frames, "PCM_24"), path
        with wave.open(str(path), "rb") as reader:
            assert (reader.getframerate(), reader.getnchannels(), reader.getnframes(), reader.getsampwidth()) == \
                (48000, 2, frames, 3), path
        audio, _ = soundfile.read(str(path), dtype="float32")
        assert np.isfinite(audio).all() and np.abs(audio).max() < 1.0


def test_bext_time_reference_puts_each_stem_at_the_clip_bar(wav_clip):
    expected = round((AT - 1) * 4 * 60 / TEMPO * 48000)  # bar 5 at 100 BPM in 4/4: 9.6 s
    for path in [wav_clip / "mix.wav", *(wav_clip / "stems").glob("*.wav")]:
        assert _time_reference(path) == expected, path


def test_clip_png_shows_the_parts_and_the_mix(wav_clip):
    """One row per part, each with notes in its own colour, and the mix's waveform below them."""
    from matplotlib import image

    from plugin_host.picture import PART_COLOURS

    picture = image.imread(str(wav_clip / "clip.png"))[..., :3]
    height, width = picture.shape[:2]
    assert width >= 1000 and height >= 400
    assert picture.std() > 0.05  # not a blank canvas
    parts = len(list((wav_clip / "stems").glob("*.wav")))
    pixels = picture.reshape(-1, 3)
    for colour in PART_COLOURS[:parts]:
        # a note is the part's colour over white at an opacity that follows its velocity (0.35-1.0): a pixel on
        # the line from white to that colour, the same opacity in each channel
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
        tinted = rgb < 0.99  # a full channel (#ff7f0e's red) stays full at any opacity
        opacity = (1.0 - pixels[:, tinted]) / (1.0 - rgb[tinted])
        on_line = ((opacity.max(axis=1) - opacity.min(axis=1) < 0.06) & (opacity.mean(axis=1) > 0.3)
                   & (pixels[:, ~tinted] > 0.97).all(axis=1))
        assert on_line.sum() > 50, f"no notes drawn in {colour}"
    waveform = picture[int(height * 0.8):int(height * 0.95), width // 2]  # the mix's row, mid-clip
    assert (waveform.max(axis=1) < 0.3).any()  # dark waveform samples


def test_flac_ring_and_another_sample_rate(engine_process, tmp_path):
    out = tmp_path / "flac"
    done = run_cli("generate", "ambient pad with soft piano", "--out", str(out), "--quiet", "--format", "flac",
                   "--tail", "ring", "--sample-rate", "44100", "--tempo", "90", "--bars", "2",
                   "--engine", engine_process.target)
    assert done.returncode == 0, done.stderr
    clip = round(2 * 4 * 60 / 90 * 44100)
    files = [out / "mix.flac", *(out / "stems").glob("*.flac")]
    lengths = set()
    for path in files:
        info = soundfile.info(str(path))
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_24", 44100, 2)
        lengths.add(info.frames)
    assert len(lengths) == 1 and lengths.pop() > clip  # all equal, and the reverb tail rings past the clip


def test_bad_render_options_are_refused_by_name(engine, engine_process, tmp_path):
    from engine.music.midi import score_to_smf
    from tests.plugin_host.clip_scores import make_score

    midi = score_to_smf(make_score(bars=1))
    with pytest.raises(RequestRejected, match="tail: must be one of cut, ring, loop") as caught:
        engine.render(midi, 48000, tail="fade")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(RequestRejected, match="soundfont: .*missing.sf2 is not in a SoundFont folder"):
        engine.render(midi, 48000, soundfont=str(tmp_path / "missing.sf2"))
    done = run_cli("generate", "pop", "--out", str(tmp_path / "x"), "--plugin", "bass", "--engine",
                   engine_process.target)
    assert done.returncode == 2 and "--plugin takes ROLE=PATH" in done.stderr


def test_render_rpc_reports_clip_length_and_loudness(engine):
    from engine.music.midi import score_to_smf
    from tests.plugin_host.clip_scores import make_score

    audio = engine.render(score_to_smf(make_score(tempo=120, bars=2)), 48000, tail="ring", bars=2)
    assert audio.clip_frames == 2 * 4 * 60 // 120 * 48000
    assert audio.mix.shape[0] > audio.clip_frames
    assert abs(audio.loudness_lufs + 14) <= 0.5 and audio.true_peak_dbtp <= -1.0


def test_style_and_roles_reach_the_renderer_over_grpc(engine):
    from engine.music.midi import score_to_smf
    from tests.plugin_host.clip_scores import ROLES, make_score

    midi = score_to_smf(make_score(tempo=120, bars=1))
    pop = engine.render(midi, 48000, style="pop", roles=ROLES, bars=1)
    metal = engine.render(midi, 48000, style="metal", roles=ROLES, bars=1)
    as_bass = engine.render(midi, 48000, style="metal", roles={**ROLES, "chords": "bass"}, bars=1)
    assert not np.allclose(pop.parts["chords"], metal.parts["chords"], atol=1e-3)  # metal distorts the chords
    assert not np.allclose(metal.parts["chords"], as_bass.parts["chords"], atol=1e-3)  # a role picks the chain


def test_files_the_engine_encodes_hold_the_samples_it_renders(engine, tmp_path):
    """RenderRequest.file_format: the same render as float32 chunks, as 24-bit Broadcast WAV at the time reference
    asked (read back by soundfile, the bext walked here), and as FLAC; the stems come first, the mix last."""
    from engine.music.midi import score_to_smf
    from tests.plugin_host.clip_scores import ROLES, make_score

    midi = score_to_smf(make_score(tempo=120, bars=2))
    options = {"style": "pop", "roles": ROLES, "bars": 2}
    audio = engine.render(midi, 48000, **options)
    arrived: list[str] = []
    wav = engine.render_files(midi, "wav", 123_456, 48000, on_file=lambda name, data: arrived.append(name), **options)
    flac = engine.render_files(midi, "flac", 0, 48000, **options)
    assert arrived == [*audio.parts, "mix"] and wav.parts == list(audio.parts) and wav.frames == audio.frames
    assert (wav.loudness_lufs, wav.sources) == (audio.loudness_lufs, audio.sources)
    for name, samples in [*audio.parts.items(), ("mix", audio.mix)]:
        for rendered, suffix in ((wav, "wav"), (flac, "flac")):
            path = tmp_path / f"{name}.{suffix}"
            path.write_bytes(rendered.files[name])
            decoded, rate = soundfile.read(str(path), dtype="float32")
            assert rate == 48000 and decoded.shape == samples.shape
            assert np.abs(decoded - np.clip(samples, -1, 1)).max() <= 2.0 ** -22  # 24-bit rounding, no more
        assert _time_reference(tmp_path / f"{name}.wav") == 123_456


def test_a_file_format_or_time_reference_out_of_range_is_refused_by_name(engine):
    from engine.music.midi import score_to_smf
    from tests.plugin_host.clip_scores import make_score

    midi = score_to_smf(make_score(bars=1))
    with pytest.raises(RequestRejected, match=r"file_format: must be one of wav, flac, or empty for float32 chunks; "
                                              r"got 'mp3'") as caught:
        engine.render_files(midi, "mp3")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(RequestRejected, match="time_reference: must be >= 0 samples, got -1"):
        engine.render_files(midi, "wav", -1)
    assert engine.render_files(midi, "wav").files["mix"][:4] == b"RIFF"  # the engine is still up


def test_wav_samples_are_the_nearest_24_bit_step_clipped_to_full_scale(tmp_path):
    from plugin_host.encode import bwf_bytes

    rng = np.random.default_rng(7)
    steps = rng.integers(-2 ** 23, 2 ** 23, size=(4001, 2)).astype(np.float64)
    audio = ((steps + rng.uniform(-0.49, 0.49, size=steps.shape)) / 2 ** 23).astype(np.float32)
    audio[::97] = [1.5, -1.5]  # over full scale: clipped, not wrapped
    path = tmp_path / "steps.wav"
    path.write_bytes(bwf_bytes(audio, 48000))
    decoded, rate = soundfile.read(path, dtype="int32")  # libsndfile puts 24-bit samples in the high bytes
    expected = np.clip(np.rint(audio.astype(np.float64) * 2 ** 23), -2 ** 23, 2 ** 23 - 1)
    assert rate == 48000 and decoded.shape == audio.shape
    np.testing.assert_array_equal(decoded >> 8, expected.astype(np.int32))
