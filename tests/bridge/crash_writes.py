"""Kill the CLI (or the engine) with SIGKILL at random moments while it renders and writes a
clip, then judge what is on disk: every output file is absent or whole. Shared by the CI test
and the full-size benchmark."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mido
import soundfile

PROMPT = "disco with slap bass, guitar, strings and drums, 16 bars"


@dataclass
class Verdict:
    killed_after: float
    files: int
    whole: int
    broken: list[str]


def judge(folder: Path) -> tuple[int, int, list[str]]:
    """(files present, files whole, descriptions of broken ones) in a clip folder."""
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".part")]
    broken = []
    for path in files:
        try:
            if path.suffix == ".mid":
                midi = mido.MidiFile(path)
                assert any(msg.type == "note_on" for track in midi.tracks for msg in track)
            elif path.suffix == ".wav":
                info = soundfile.info(path)
                audio, _ = soundfile.read(path)
                assert len(audio) == info.frames > 0
            elif path.suffix == ".json":
                import json
                json.loads(path.read_text())
        except Exception as error:
            broken.append(f"{path.name}: {error}")
    return len(files), len(files) - len(broken), broken


def kill_cli_at_random(target: str, out: Path, rng: random.Random, longest: float) -> Verdict:
    """Start `cadenza generate` against ``target``, SIGKILL it after a random delay, judge ``out``."""
    delay = rng.uniform(0.05, longest)
    process = subprocess.Popen([sys.executable, "-m", "bridge.cli", "generate", PROMPT, "--out", str(out),
                                "--engine", target, "--seed", str(rng.randrange(100)), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    files, whole, broken = judge(out) if out.exists() else (0, 0, [])
    return Verdict(delay, files, whole, broken)
