"""Regenerate the Python stubs from protos/cadenza/v1/engine.proto.

Run from anywhere: ``python -m protos.codegen``. The stubs are committed; a test
regenerates them into a temporary folder and fails when the committed ones differ.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = Path("protos/cadenza/v1/engine.proto")


def generate(out_dir: Path) -> None:
    """Write engine_pb2.py, engine_pb2.pyi and engine_pb2_grpc.py under ``out_dir``."""
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{ROOT}", f"--python_out={out_dir}", f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}", str(ROOT / PROTO)]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO}")


def main() -> int:
    generate(ROOT)
    print(f"regenerated stubs for {PROTO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
