"""Bad input gets INVALID_ARGUMENT naming the field; the engine stays up for the next request."""
from __future__ import annotations

import grpc
import pytest

from bridge.client import RequestRejected
from protos.cadenza.v1 import engine_pb2 as pb
from tests.conftest import run_cli

BAD_OVERRIDES = [
    ({"tempo_bpm": 0}, "tempo", "20-400"),
    ({"tempo_bpm": 400.5}, "tempo", "20-400"),
    ({"key": "H minor"}, "key", "accepted"),
    ({"key": "C bluesy"}, "key", "accepted"),
    ({"meter": "7/5"}, "meter", "impossible meter"),
    ({"meter": "0/4"}, "meter", "impossible meter"),
    ({"meter": "seven"}, "meter", "4/4"),
    ({"bars": 0}, "bars", "1-256"),
    ({"bars": 257}, "bars", "1-256"),
    ({"start_bar": 0}, "start_bar", "start bar"),
]
BAD_PROMPTS = [
    ("", "prompt", "empty"),
    ("   ", "prompt", "empty"),
    ("x" * 2001, "prompt", "2000"),
    ("disco at 900 bpm", "tempo", "20-400"),
    ("a waltz in 3/5 time", "meter", "impossible meter"),
    ("300 bars of techno", "bars", "1-256"),
]


@pytest.mark.parametrize(("overrides", "field", "accepted"), BAD_OVERRIDES)
def test_bad_override_is_invalid_argument_naming_the_field(engine, overrides, field, accepted):
    for call in (engine.describe, engine.generate):
        with pytest.raises(RequestRejected) as caught:
            call("disco track", pb.Overrides(**overrides))
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert field in str(caught.value) and accepted in str(caught.value)
    assert engine.describe("disco track").style == "disco"  # still up


@pytest.mark.parametrize(("prompt", "field", "accepted"), BAD_PROMPTS)
def test_bad_prompt_is_invalid_argument_naming_the_field(engine, prompt, field, accepted):
    with pytest.raises(RequestRejected) as caught:
        engine.generate(prompt)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in str(caught.value) and accepted in str(caught.value)
    assert engine.describe("disco track").style == "disco"


@pytest.mark.parametrize("midi", [b"", b"not midi at all", b"MThd\x00\x00\x00\x06\x00\x01\x00\x02garbage"])
def test_render_of_malformed_midi_is_invalid_argument(engine, midi):
    with pytest.raises(RequestRejected) as caught:
        engine.render(midi)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT and "midi" in str(caught.value)


def test_render_of_unsupported_sample_rate_is_invalid_argument(engine):
    midi = engine.generate("disco track, 1 bar", pb.Overrides(seed=1)).midi
    with pytest.raises(RequestRejected) as caught:
        engine.render(midi, sample_rate=12345)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT and "sample_rate" in str(caught.value)


def test_cli_prints_one_line_error_for_out_of_range_tempo(engine_process, tmp_path):
    result = run_cli("generate", "disco", "--out", str(tmp_path), "--tempo", "0", "--engine", engine_process.target)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "tempo must be 20-400 BPM, got 0" in result.stderr
    assert not (tmp_path / "clip.mid").exists()


def test_cli_reports_an_unreachable_engine(tmp_path):
    result = run_cli("describe", "disco", "--engine", "127.0.0.1:9")
    assert result.returncode == 1
    assert "no engine answers at 127.0.0.1:9" in result.stderr


def test_cli_errors_name_the_flag_not_the_request_field(engine_process, tmp_path):
    result = run_cli("describe", "disco", "--tempo", "1000", "--engine", engine_process.target)
    assert result.returncode == 2
    assert result.stderr.strip() == "cadenza: error: --tempo: tempo must be 20-400 BPM, got 1000"


def test_a_plugin_for_no_role_or_part_is_refused_naming_both(engine_process, tmp_path):
    result = run_cli("generate", "disco with bass and drums, 1 bar", "--out", str(tmp_path / "c"), "--plugin",
                     f"chord={tmp_path / 'Synth.vst3'}", "--engine", engine_process.target, "--quiet")
    assert result.returncode == 2, result.stderr
    assert "--plugin chord: 'chord' is neither a role of this clip" in result.stderr
    assert "bass" in result.stderr and "drums" in result.stderr
    assert not (tmp_path / "c" / "clip.mid").exists()


def test_a_mistyped_flag_or_command_gets_the_closest_one(tmp_path):
    flag = run_cli("generate", "disco", "--out", str(tmp_path), "--tempp", "90")
    assert flag.returncode == 2
    assert "usage: cadenza generate" in flag.stderr and "did you mean --tempo?" in flag.stderr
    command = run_cli("generat", "disco")
    assert command.returncode == 2 and "did you mean 'generate'?" in command.stderr


def test_version_and_out_inside_a_file_answer_before_any_engine(tmp_path):
    shown = run_cli("--version")
    assert shown.returncode == 0 and shown.stdout.startswith("cadenza ")
    (tmp_path / "afile").write_text("not a folder")
    result = run_cli("generate", "disco", "--out", str(tmp_path / "afile" / "clip"), "--engine", "127.0.0.1:9")
    assert result.returncode == 2  # the unreachable engine is never asked: the folder is checked first
    assert result.stderr.strip().count("\n") == 0 and "which is a file" in result.stderr


def test_notes_of_a_folder_that_is_not_a_clip_says_what_a_clip_folder_holds(tmp_path):
    missing = run_cli("notes", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
    empty = run_cli("notes", str(tmp_path))
    assert empty.returncode == 2 and "has no spec.json" in empty.stderr and "clip.mid" in empty.stderr
