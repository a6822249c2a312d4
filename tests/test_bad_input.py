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
