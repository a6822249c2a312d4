"""The `clock_rig` fixture: jack_midi_clock, a timebase master and a recorder on the test JACK server."""
from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.bridge.jack_rig import ClockRig


@pytest.fixture()
def clock_rig(jack_server: str) -> Iterator[ClockRig]:
    """The rig on synchronous JACK (-S)."""
    yield from _clock_rig(jack_server)


@pytest.fixture()
def clock_rig_async(jack_server_async: str) -> Iterator[ClockRig]:
    """The rig on asynchronous JACK, as `jackd --no-realtime -d dummy` runs without -S."""
    yield from _clock_rig(jack_server_async)


@pytest.fixture()
def loaded_cpu() -> Iterator[list]:
    """Two busy processes beside the test (bounded: each ends by itself within 10 minutes)."""
    from tests.bridge.jack_rig import cpu_load

    with cpu_load(2) as busy:
        yield busy


def _clock_rig(jack_server: str) -> Iterator[ClockRig]:
    from tests.bridge.jack_rig import ClockRig, Recorder, TimebaseMaster  # needs the jack module

    if shutil.which("jack_midi_clock") is None:
        pytest.skip("jack_midi_clock is not installed (apt-get install jack-midi-clock); .ci/run installs it")
    master = TimebaseMaster()
    recorder = Recorder(["clock", "out"])
    # jack_midi_clock connects itself to the recorder; its own client name may carry a suffix
    # while an earlier test's instance is still leaving the server.
    clock = subprocess.Popen(["jack_midi_clock", "-d", "0", "cadenza-recorder:clock"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rig = ClockRig(jack_server, master, clock, recorder)
    try:
        rig.wait(lambda: bool(recorder.client.get_all_connections("cadenza-recorder:clock")), 10,
                 "jack_midi_clock's port")
        rig.clock_port = recorder.client.get_all_connections("cadenza-recorder:clock")[0].name
        yield rig
    finally:
        for item in rig.extra:
            item.close()
        master.close()
        recorder.close()
        clock.send_signal(signal.SIGINT)  # its clean exit: SIGTERM would leave the client
        # in the graph, and a synchronous server then stalls waiting for it
        try:
            clock.wait(timeout=5)
        except subprocess.TimeoutExpired:
            clock.kill()


