"""The README's test command runs as written for root (no sudo on the machine) and for a normal user.

What is checked is the part that differs between the two: the `SUDO=...` prefix the command starts
with, run by bash as root and as the unprivileged user `nobody` (runuser). The installs and the
test run that follow it are what `.ci/run` does on every CI run.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_test_command() -> str:
    """The README's test command (the shell block that runs pytest)."""
    blocks = re.findall(r"```sh\n(.*?)\n```", README.read_text(), re.S)
    return next(block for block in blocks if "python -m pytest" in block)


def _prefix_says(user: str | None) -> str:
    prefix = readme_test_command().split(" && ")[0]
    assert prefix.startswith("SUDO="), "the test command must pick sudo only where it is needed"
    script = f'{prefix} && echo "[$SUDO]"'
    command = ["bash", "-c", script] if user is None else ["runuser", "-u", user, "--", "bash", "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_test_command_uses_sudo_only_for_a_normal_user() -> None:
    import os

    if os.getuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root and runuser to try both users")
    assert _prefix_says(None) == "[]"
    assert _prefix_says("nobody") == "[sudo]"
    assert "sudo apt-get" not in readme_test_command() and "$SUDO apt-get" in readme_test_command()
