"""The README's test command (`bash .ci/run`) installs as root (no sudo on the machine) and as a
normal user (through sudo).

What is checked is the part that differs between the two: the lines of .ci/run that choose the
`$SUDO` prefix of its apt-get calls, run by bash as root and as the unprivileged user `nobody`
(runuser). The installs and the test run that follow are what CI runs.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _sudo_lines() -> str:
    script = (ROOT / ".ci" / "run").read_text()
    lines = [line for line in script.splitlines() if re.match(r"\s*(SUDO=|\[ .*\] \|\| SUDO=)", line)]
    assert lines, ".ci/run must choose sudo only where it is needed"
    assert "$SUDO apt-get" in script and "sudo apt-get" not in script
    return "\n".join(lines)


def _prefix_for(user: str | None) -> str:
    script = _sudo_lines() + '\necho "[$SUDO]"'
    command = ["bash", "-c", script] if user is None else ["runuser", "-u", user, "--", "bash", "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_readme_test_command_uses_sudo_only_for_a_normal_user() -> None:
    assert "bash .ci/run" in (ROOT / "README.md").read_text()
    if os.getuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser to try both users")
    assert _prefix_for(None) == "[]"
    assert _prefix_for("nobody") == "[sudo]"
