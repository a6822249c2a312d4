"""`cadenza bridge`'s terminal UI, driven through a pseudo-terminal as a user types, its screen read
back by a terminal emulator (pyte); the clock is jack_midi_clock on JACK, the engine a real process."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
import time

import pytest

from bridge.client import EngineClient
from protos.cadenza.v1 import engine_pb2 as pb

pyte = pytest.importorskip("pyte")
pytestmark = pytest.mark.jack

ROWS, COLUMNS = 30, 120


class Terminal:
    """A process on a pseudo-terminal, its output fed to a pyte screen by a reader thread."""

    def __init__(self, args: list[str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                                        env={**os.environ, "TERM": "xterm-256color"}, start_new_session=True)
        os.close(slave)
        self.master = master
        self.screen = pyte.Screen(COLUMNS, ROWS)
        # Answer what the program asks the terminal (the cursor position), as a real terminal does.
        self.screen.write_process_input = lambda data: os.write(master, data.encode())
        self.stream = pyte.ByteStream(self.screen)
        self.text = ""  # everything printed, escapes included, for messages that scrolled away
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.stream.feed(data)
                self.text += data.decode(errors="replace")

    def lines(self) -> list[str]:
        with self.lock:
            return [line.rstrip() for line in self.screen.display]

    def wait(self, test, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = test()
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout:g} s; screen:\n" + "\n".join(self.lines()))

    def wait_text(self, text: str, timeout: float) -> None:
        self.wait(lambda: text in self.text or any(text in line for line in self.lines()), timeout, repr(text))

    def type(self, keys: str, pause: float = 0.01) -> None:
        for key in keys:
            os.write(self.master, key.encode())
            time.sleep(pause)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.master)


def test_the_bridge_ui_echoes_typing_keeps_its_status_row_and_wires_every_key(clock_rig, engine_process) -> None:
    rig = clock_rig
    session = f"pty-{os.getpid()}-{time.monotonic_ns()}"
    term = Terminal([sys.executable, "-m", "bridge.cli", "bridge", "--in", rig.clock_port, "--out",
                     "cadenza-recorder:out", "--engine", engine_process.target, "--session", session])
    try:
        term.wait_text("bridge: clock in", 60)
        rig.master.set_tempo(120.0)
        rig.master.start_from(0)
        rig.wait(lambda: len(rig.clock_ticks_after(0)) > 2 * 96, what="two bars of clock")

        def status_row() -> str | None:
            lines = [line for line in term.lines() if line]
            last = lines[-1] if lines else ""
            row = r"\s*1(19|20)\.\d\d BPM +(locked|locking) [01]\.\d\d +\d+:\d +running +4/4 +engine: "
            return last if re.match(row, last) else None

        term.wait(status_row, 20, "a status row with the clock's tempo at the bottom")
        typed = "g 2 bars of pop with drums and bass, A minor"
        term.type(typed)
        # What is typed shows on the prompt line while typing, and the status row stays the last row.
        term.wait(lambda: any(line.startswith("> " + typed) for line in term.lines()), 10, "the typed text")
        assert status_row(), "typing overwrote the status row"
        term.type("\r")
        term.wait_text("lands on bar", 120)

        for keys, text in (("k", "kept in session"), ("v", "a variation of"), ("r", "rejected in session"),
                           ("c", "continues")):
            term.type(keys + "\r")
            term.wait_text(text, 120)
            term.wait(status_row, 2, f"the status row after {keys!r}")
        term.type("q\r")
        assert term.process.wait(timeout=30) == 0
    finally:
        term.close()

    with EngineClient(engine_process.target) as client:
        takes = client.call("History", pb.HistoryRequest(session=session)).takes
    assert [(t.operation, t.verdict) for t in takes] == [("generate", "keep"), ("vary", "reject"),
                                                         ("continue", "")]
    assert takes[1].parent == takes[0].take and takes[2].parent == takes[1].take
    assert takes[2].spec.bars == 2, "continue in the bridge plays only the new bars"
