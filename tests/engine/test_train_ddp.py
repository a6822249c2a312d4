"""`cadenza train` under `torchrun --nproc_per_node=2`: two gloo ranks, one checkpoint, different shards."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import run_cli
from tests.engine.test_train_smoke import _write_midi_folder

STEPS = 5


def _torchrun_train(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """torchrun (standalone: its own rendezvous on a free port) in a process group of its own,
    so a hung job is killed whole, ranks included."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                                "-m", "bridge.cli", "train", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"torchrun did not finish in {timeout:.0f} s: {stderr[-3000:]}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_torchrun_trains_on_two_ranks_and_rank_0_writes(tmp_path: Path, untrained_checkpoint: Path) -> None:
    _write_midi_folder(tmp_path / "midi")
    out_dir = tmp_path / "ddp"
    common = ("--data", str(tmp_path / "midi"), "--init", str(untrained_checkpoint), "--steps", str(STEPS))
    result = _torchrun_train(*common, "--out", str(out_dir / "tuned.pt"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("wrote ") == 1  # rank 0 reports; rank 1 says nothing
    assert sorted(p.name for p in out_dir.iterdir()) == ["tuned-validation.npz", "tuned.pt"]
    record = torch.load(out_dir / "tuned.pt", weights_only=False)["record"]
    job = record["distributed"]
    assert job["world_size"] == 2 and job["per_rank_batch"] == 12  # FINE_TUNE's global batch of 24, halved
    ranks = sorted(job["ranks"], key=lambda r: r["rank"])
    assert [r["rank"] for r in ranks] == [0, 1]
    assert [r["examples"] for r in ranks] == [STEPS * 12, STEPS * 12]
    assert ranks[0]["digest"] != ranks[1]["digest"]  # each rank trained on its own slice
    assert record["steps"] == STEPS and len(record["train_loss_curve"]) == STEPS

    single = run_cli("train", *common, "--out", str(tmp_path / "one.pt"))
    assert single.returncode == 0, single.stderr[-3000:]
    alone = torch.load(tmp_path / "one.pt", weights_only=False)["record"]
    assert alone["distributed"]["world_size"] == 1
    # The two ranks' slices together are the one process's batches: the same tokens, seed for seed.
    assert record["tokens_seen"] == alone["tokens_seen"]
    assert alone["distributed"]["ranks"][0]["digest"] not in {r["digest"] for r in ranks}
