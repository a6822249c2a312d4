"""MIDI garbage, full size: 10^6 random bytes into "Cadenza In" on a real JACK server, then valid clock.

Run: python -m tests.benchmarks.bench_midi_garbage [BYTES]
Runs tests/bridge/test_midi_faults_jack.py::test_midi_garbage (it starts its own jackd) with
CADENZA_GARBAGE_BYTES=BYTES (default 10^6; CI runs 10^5) and the 10 MB SysEx flood beside it;
prints the bytes sent, events lost and ignored, xruns, the position and tempo 2 beats after the
valid Start, and the flood's RSS figures.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[1] / "bridge" / "test_midi_faults_jack.py"


def main() -> int:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    os.environ["CADENZA_GARBAGE_BYTES"] = str(size)
    started = time.monotonic()
    code = pytest.main(["-q", "-s", "-p", "no:cacheprovider", f"{MODULE}::test_midi_garbage",
                        f"{MODULE}::test_sysex_flood"])
    print(f"garbage of {size} bytes and the 10 MB SysEx flood: {time.monotonic() - started:.0f} s, exit {code}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
