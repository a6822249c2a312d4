"""Fuzzing, full size: the prompt parser, the MIDI file reader and the MIDI byte parser, 10^6 executions each.

Run: python -m tests.benchmarks.bench_fuzz [EXECUTIONS]
Prints executions and rate per target; any crash fails with hypothesis's minimal example.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

TARGETS = ("test_fuzz_explicit_attribute_parsers_never_crash", "test_fuzz_prompt_parser_never_crashes",
           "test_fuzz_midi_file_reader_never_crashes", "test_fuzz_midi_byte_parser_never_crashes")
MODULE = Path(__file__).resolve().parents[1] / "engine" / "test_fuzz_parsers.py"


def main() -> int:
    executions = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    os.environ["CADENZA_FUZZ_EXAMPLES"] = str(executions)
    worst = 0
    for target in TARGETS:
        started = time.monotonic()
        code = pytest.main(["-q", "-p", "no:cacheprovider", f"{MODULE}::{target}"])
        seconds = time.monotonic() - started
        print(f"{target}: {executions} executions in {seconds:.0f} s ({executions / seconds:.0f}/s), exit {code}")
        worst = max(worst, int(code))
    return worst


if __name__ == "__main__":
    sys.exit(main())
