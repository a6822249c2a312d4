"""Full-size bad-input scenario: 10,000 property-based requests per RPC against a real engine.

Run: python tests/benchmarks/bench_bad_requests.py [N]
Prints how many requests were sent and how long they took; fails loudly on any answer other
than OK or INVALID_ARGUMENT naming a field, or if health is not SERVING afterwards.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    os.environ["CADENZA_PROPERTY_EXAMPLES"] = str(examples)
    started = time.monotonic()
    code = pytest.main(["-q", "-p", "no:cacheprovider", str(ROOT / "tests/engine/test_bad_requests_property.py")])
    seconds = time.monotonic() - started
    print(f"bad-request property run: {examples} Describe/Generate + {examples} Render requests, "
          f"{seconds:.1f} s ({2 * examples / seconds:.0f} requests/s), pytest exit {code}")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
