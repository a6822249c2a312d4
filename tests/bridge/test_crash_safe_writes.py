"""Crash-safe writes: SIGKILL of the CLI at random moments never leaves a half-written file,
and the next run into the same folder finishes the job."""
from __future__ import annotations

import os
import random

from tests.bridge.crash_writes import judge, kill_cli_at_random
from tests.conftest import run_cli

KILLS = int(os.environ.get("CADENZA_CRASH_KILLS", "12"))


def test_kill_9_of_the_cli_leaves_every_file_absent_or_whole(engine_process, tmp_path):
    rng = random.Random(7)
    partial = 0
    for index in range(KILLS):
        out = tmp_path / f"clip{index}"
        verdict = kill_cli_at_random(engine_process.target, out, rng, longest=2.5)
        assert not verdict.broken, verdict
        partial += 0 < verdict.files < 8
        if not (out / "clip.mid").exists():  # unfinished: a new run completes it over the leftovers
            result = run_cli("generate", "disco with slap bass, guitar, strings and drums, 16 bars", "--out", str(out),
                             "--engine", engine_process.target, "--seed", "1", "--quiet")
            assert result.returncode == 0, result.stderr
            files, whole, broken = judge(out)
            assert not broken and not list(out.rglob(".*.part"))
    print(f"\n{KILLS} kills, {partial} left a partly written folder, none a broken file")
