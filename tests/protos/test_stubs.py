"""The committed gRPC stubs are exactly what `python -m protos.codegen` makes from the proto."""
from pathlib import Path

import pytest

from protos import codegen

STUBS = ("engine_pb2.py", "engine_pb2.pyi", "engine_pb2_grpc.py")


@pytest.mark.parametrize("name", STUBS)
def test_committed_stub_matches_regenerated(tmp_path: Path, name: str):
    codegen.generate(tmp_path)
    fresh = (tmp_path / "protos/cadenza/v1" / name).read_text()
    committed = (codegen.ROOT / "protos/cadenza/v1" / name).read_text()
    assert committed == fresh, f"{name} is stale: run `python -m protos.codegen` and commit the result"
