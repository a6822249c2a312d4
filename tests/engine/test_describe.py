"""Describe over gRPC (a real engine process): what was understood, each field with its source."""
from __future__ import annotations

from protos.cadenza.v1 import engine_pb2 as pb
from tests.conftest import run_cli


def test_describe_returns_fields_sources_and_notes(engine) -> None:
    spec = engine.describe("an argentine tango with bandoneon, key of C sharp minor, ♩=112, no drums")
    assert (spec.key.tonic, spec.key.mode, spec.tempo_bpm) == ("C#", "minor", 112)
    assert spec.style == "tango" and spec.sources["style"] == pb.SOURCE_INFERRED  # tango is in the catalogue now
    assert spec.sources["key"] == pb.SOURCE_EXPLICIT and spec.sources["bars"] == pb.SOURCE_DEFAULT
    assert all(not part.is_drum for part in spec.parts)
    assert 0.0 <= spec.energy <= 1.0 and "energy" in spec.sources


def test_cadenza_describe_prints_each_source() -> None:
    done = run_cli("describe", "a cheerful waltz in a minor key for solo piano")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert "(explicit)" in lines["meter"] or "(inferred)" in lines["meter"]
    assert "3/4" in lines["meter"] and "A minor" in lines["key"] and "(inferred)" in lines["key"]
    assert "happy" in lines["mood"]
    assert "minor key was asked without a tonic" in done.stdout
