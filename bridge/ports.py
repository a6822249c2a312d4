"""MIDI ports for the bridge: "Cadenza In" and "Cadenza Out", on JACK, ALSA or CoreMIDI.

Two kinds, one interface. Both are context managers; closing sends `panic()` (All Notes Off
and All Sound Off on every channel) so nothing is left sounding. Both drive a *process
function* ``process(events, start, end) -> events``: it gets the MIDI events received in
the time window [start, end) as ``(time, bytes)`` pairs in time order and returns the events
to send in that window (`bridge.live.LiveSession.process` is one).

- `JackPorts` (``--midi-api jack``): a JACK client made with the JACK-Client package. Times are
  JACK frame times divided by the sample rate, exact to the frame: an event is stamped at its
  frame in the period, and an outgoing event is written at its frame. The window is one period.
- `RtMidiPorts` (``--midi-api alsa | coremidi | jack-rtmidi``): python-rtmidi. Received events
  are stamped from rtmidi's delta times (on JACK those are the time of the period's callback,
  up to a period late, see PLATFORM.md) and go through a thread-safe queue to a worker thread,
  which calls the process function every millisecond and sends each outgoing event at its time
  (rtmidi on JACK then sends it with the next period). python-rtmidi's wheel bundles its own
  libjack, which cannot share a process with JACK-Client's: use one kind per process.

Each port can also connect to existing ports by name instead of only offering virtual ones.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from bridge.arguments import MIDI_APIS
from engine.errors import Unavailable

Event = tuple[float, bytes]
ProcessFn = Callable[[list[Event], float, float], list[Event]]

CLIENT_NAME = "Cadenza"
IN_NAME = "Cadenza In"
OUT_NAME = "Cadenza Out"
PANIC_TIMEOUT_S = 1.0
RTMIDI_WINDOW_S = 0.001
RTMIDI_OFFSET_WINDOW = 256  # messages over which the least-late callback anchors rtmidi's times


class PortError(Unavailable):
    """A MIDI port could not be opened or connected; the text says what exists instead."""


def panic_messages() -> list[bytes]:
    """All Sound Off (CC 120) and All Notes Off (CC 123) on all 16 channels."""
    return [bytes([0xB0 | channel, controller, 0]) for channel in range(16) for controller in (120, 123)]


def _match(wanted: str, available: Sequence[str], what: str) -> str:
    """The one available port named ``wanted`` (exactly, else as a case-insensitive part)."""
    if wanted in available:
        return wanted
    found = [name for name in available if wanted.lower() in name.lower()]
    if len(found) == 1:
        return found[0]
    listing = ", ".join(repr(name) for name in available) or "none"
    if not found:
        raise PortError(f"no {what} named {wanted!r}; available: {listing}")
    raise PortError(f"{wanted!r} matches several {what}s ({', '.join(map(repr, found))}); name one exactly")


class JackPorts:
    """A JACK client "Cadenza" with MIDI ports "Cadenza In" and "Cadenza Out".

    Real-time contract of the process callback (runs in JACK's process thread, once per
    period): it reads this period's input events, calls ``process`` once, writes the result
    at the events' frames, and handles a pending panic. It takes no locks, does no I/O and
    never sleeps; ``process`` must keep to the same rules (communicate through deques and
    immutable snapshots). It is Python, so it allocates and can wait for the GIL: this is
    soft real time, which costs at most an xrun, never a wrong time, because every time is a
    frame count. On asynchronous JACK (no ``-S``) a client that is late can be run twice in one
    period (the second call rereads the period's input: it is dropped, the output written again)
    or not at all (`skipped_periods`: what the clock master sent then never arrives); real-time
    scheduling (jackd's default, ``-R``, where permitted) makes both rare on a busy machine.
    """

    frame_exact = True  # events stamped at their own frame (see `bridge.clock.TempoEstimator`)

    def __init__(self, process: ProcessFn, connect_in: Sequence[str] = (), connect_out: Sequence[str] = (),
                 client_name: str = CLIENT_NAME, server: str | None = None) -> None:
        try:
            import jack
        except (ImportError, OSError) as error:  # OSError: libjack missing
            raise PortError(f"JACK is not available ({error}); install JACK-Client and libjack") from None
        self._jack = jack
        try:
            self.client = jack.Client(client_name, no_start_server=True, servername=server)
        except jack.JackOpenError as error:
            raise PortError(f"cannot connect to a JACK server ({error}); start one, e.g. "
                            "`jackd -d dummy` (real-time where permitted, which a busy machine needs)") from None
        self.process_fn = process
        self.samplerate = self.client.samplerate
        self.inport = self.client.midi_inports.register(IN_NAME)
        self.outport = self.client.midi_outports.register(OUT_NAME)
        self._panic = False
        self._panicked = threading.Event()
        self._closed = False
        self._closing = False  # set by `close`: the callback returns at once (see `close`)
        self._idle = threading.Event()  # set by the callback once it has seen `_closing`
        self.errors: list[BaseException] = []
        self.xruns = 0
        self.irregular_periods = 0  # periods not following the last one: some were skipped
        self.skipped_periods = 0  # periods JACK never ran us in (asynchronous JACK, late client)
        self.repeated_periods = 0  # calls in a period already processed (asynchronous JACK, late client)
        self._last_first: int | None = None
        self._last_out: list[tuple[int, bytes]] = []
        self._bind_time_functions()
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)
        self.client.activate()
        try:
            for name in connect_in:
                source = _match(name, [p.name for p in self.client.get_ports(is_midi=True, is_output=True)],
                                "JACK MIDI output")
                self.client.connect(source, self.inport)
            for name in connect_out:
                target = _match(name, [p.name for p in self.client.get_ports(is_midi=True, is_input=True)],
                                "JACK MIDI input")
                self.client.connect(self.outport, target)
        except (PortError, jack.JackError):
            self.client.deactivate()
            self.client.close()
            raise

    @property
    def in_name(self) -> str:
        return self.inport.name

    @property
    def out_name(self) -> str:
        return self.outport.name

    def now(self) -> float:
        """The current time on the ports' clock (estimated JACK frame time, seconds)."""
        return self.client.frame_time / self.samplerate

    def cycle_times(self) -> tuple[int, int, int] | None:
        """JACK's own time of the current period, in its process callback: (first frame, its time,
        the next period's time), times in microseconds on JACK's clock (`jack_get_cycle_times`;
        CLOCK_MONOTONIC_RAW on Linux, the clock Ableton Link uses too), or None if unavailable."""
        if self._cycle_times is None:
            return None
        frames, usecs, next_usecs, period = (ctypes.c_uint32(), ctypes.c_uint64(), ctypes.c_uint64(),
                                             ctypes.c_float())
        if self._cycle_times(self._client_pointer, frames, usecs, next_usecs, period) != 0:
            return None
        return frames.value, usecs.value, next_usecs.value

    def jack_micros(self) -> int | None:
        """The current time on JACK's clock (`jack_get_time`, microseconds), or None if unavailable."""
        return None if self._get_time is None else self._get_time()

    def _bind_time_functions(self) -> None:
        # JACK-Client does not wrap these; the library it loaded is the one ctypes finds by name.
        self._cycle_times = self._get_time = None
        self._client_pointer = int(self._jack._ffi.cast("uintptr_t", self.client._ptr))
        try:
            library = ctypes.CDLL(ctypes.util.find_library("jack") or "libjack.so.0")
            cycle_times, get_time = library.jack_get_cycle_times, library.jack_get_time
        except (OSError, AttributeError):
            return
        cycle_times.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint64),
                                ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_float)]
        cycle_times.restype = ctypes.c_int
        get_time.argtypes, get_time.restype = [], ctypes.c_uint64
        self._cycle_times, self._get_time = cycle_times, get_time

    def _process(self, frames: int) -> None:
        if self._closing:
            self._idle.set()
            return
        self.outport.clear_buffer()
        first = self.client.last_frame_time
        if self._last_first is not None:
            ahead = (first - self._last_first) & 0xFFFFFFFF  # frame times wrap at 2**32
            if ahead == 0 or ahead >= 1 << 31:
                # Asynchronous JACK triggered us again while we were late, and this call came in the
                # same period (its frame time is the server's current one): that period's input was
                # taken already (taking it again doubles every clock tick in it), so only the output
                # is written again, at the same frames, since the buffer was just cleared.
                self.repeated_periods += 1
                if ahead == 0:
                    self._write(self._last_out)
                return
            if ahead != frames:
                self.irregular_periods += 1  # periods skipped: events in them were lost
                self.skipped_periods += max(ahead // frames - 1, 0)
        self._last_first = first
        rate = self.samplerate
        try:
            events = [((first + offset) / rate, bytes(data)) for offset, data in self.inport.incoming_midi_events()]
            out = self.process_fn(events, first / rate, (first + frames) / rate)
            if self._panic:
                out = out + [(first / rate, message) for message in panic_messages()]
                self._panic = False
                self._panicked.set()
            written, last = [], 0
            for when, data in out:
                # Each event at its own frame in this period, from JACK's frame time (never the wall clock)
                offset = min(max(round(when * rate) - first, last), frames - 1)
                written.append((offset, data))
                last = offset
            self._last_out = written
            self._write(written)
        except Exception as error:  # never let an exception stop JACK's thread; report it later
            if len(self.errors) < 100:
                self.errors.append(error)

    def _write(self, events: list[tuple[int, bytes]]) -> None:
        try:
            for offset, data in events:
                self.outport.write_midi_event(offset, data)
        except Exception as error:  # a full buffer: reported later, never raised into JACK's thread
            if len(self.errors) < 100:
                self.errors.append(error)

    def _xrun(self, delayed_usecs: float) -> None:
        self.xruns += 1

    def panic(self) -> None:
        """Send All Notes Off / All Sound Off on every channel in the next period."""
        self._panicked.clear()
        self._panic = True
        self._panicked.wait(PANIC_TIMEOUT_S)

    def close(self) -> None:
        """Send the panic, then leave JACK. jack2 deactivates a client by cancelling its process
        thread; cancelled inside the Python callback (a late period on a busy asynchronous server)
        the process can crash. So the callback is first made to return at once, and JACK leaves
        just after one such period, while the thread waits for the next."""
        if self._closed:
            return
        self._closed = True
        self.panic()
        self._closing = True
        self._idle.wait(PANIC_TIMEOUT_S)
        self.client.deactivate()
        self.client.close()

    def __enter__(self) -> JackPorts:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_RTMIDI_APIS = {"jack-rtmidi": "API_UNIX_JACK", "alsa": "API_LINUX_ALSA", "coremidi": "API_MACOSX_CORE"}


class RtMidiPorts:
    """Virtual (or connected) ports "Cadenza In" / "Cadenza Out" with python-rtmidi.

    Real-time contract of the input callback (runs in rtmidi's thread): it stamps the event
    (rtmidi's delta times mapped onto ``time.perf_counter()``) and puts ``(time, bytes)`` on a
    `queue.SimpleQueue`, nothing else: no locks held long, no I/O, no waiting. A worker thread drains the queue, calls
    ``process`` once per millisecond and sends the results at their times.
    """

    frame_exact = False  # stamped when rtmidi's callback runs: up to a period late

    def __init__(self, process: ProcessFn, api: str = "alsa", connect_in: str | None = None,
                 connect_out: str | None = None, client_name: str = CLIENT_NAME) -> None:
        import rtmidi

        if api not in _RTMIDI_APIS:
            raise PortError(f"unknown rtmidi API {api!r}; accepted: {', '.join(_RTMIDI_APIS)}")
        api_id = getattr(rtmidi, _RTMIDI_APIS[api])
        if api_id not in rtmidi.get_compiled_api():
            compiled = ", ".join(rtmidi.get_api_name(a) for a in rtmidi.get_compiled_api())
            raise PortError(f"python-rtmidi here has no {api} support (it has: {compiled})")
        if sys.platform == "win32" and (connect_in is None or connect_out is None):
            raise PortError("Windows MIDI has no virtual ports; name existing ones to connect to")
        self.process_fn = process
        self.received: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._sum = 0.0
        self._offsets: deque[float] = deque(maxlen=RTMIDI_OFFSET_WINDOW)
        self._last_stamp = 0.0
        try:
            self.midi_in = rtmidi.MidiIn(api_id, name=client_name)
            self.midi_out = rtmidi.MidiOut(api_id, name=client_name)
            self.midi_in.ignore_types(sysex=False, timing=False, active_sense=True)
            if connect_in:
                self.midi_in.open_port(self.midi_in.get_ports().index(
                    _match(connect_in, self.midi_in.get_ports(), "MIDI output")), IN_NAME)
            else:
                self.midi_in.open_virtual_port(IN_NAME)
            if connect_out:
                self.midi_out.open_port(self.midi_out.get_ports().index(
                    _match(connect_out, self.midi_out.get_ports(), "MIDI input")), OUT_NAME)
            else:
                self.midi_out.open_virtual_port(OUT_NAME)
        except rtmidi.RtMidiError as error:
            raise PortError(f"cannot open {api} MIDI ports: {error}") from None
        self.in_name = f"{IN_NAME} (from {connect_in})" if connect_in else IN_NAME
        self.out_name = f"{OUT_NAME} (to {connect_out})" if connect_out else OUT_NAME
        self.midi_in.set_callback(self._received)
        self.errors: list[BaseException] = []
        self._running = True
        self._worker = threading.Thread(target=self._run, name="cadenza-midi", daemon=True)
        self._worker.start()

    def _received(self, message: tuple[list[int], float], data: object = None) -> None:
        # rtmidi's delta times come from its own MIDI thread (JACK: the period's jack_get_time();
        # ALSA: the sequencer queue), so a Python thread starved of CPU does not skew them. Their
        # sum is mapped onto perf_counter() by the smallest offset seen lately (the callback
        # that ran least late), and kept from going backwards.
        data_bytes, delta = bytes(message[0]), message[1]
        self._sum += delta
        self._offsets.append(time.perf_counter() - self._sum)
        stamp = max(self._sum + min(self._offsets), self._last_stamp)
        self._last_stamp = stamp
        self.received.put((stamp, data_bytes))

    def now(self) -> float:
        return time.perf_counter()

    def _run(self) -> None:
        start = time.perf_counter()
        while self._running:
            end = time.perf_counter() + RTMIDI_WINDOW_S
            events = []
            while True:
                try:
                    when, data = self.received.get_nowait()
                except queue.Empty:
                    break
                events.append((min(max(when, start), end), data))
            try:
                for when, data in self.process_fn(events, start, end):
                    delay = when - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    self.midi_out.send_message(data)
            except Exception as error:
                if len(self.errors) < 100:
                    self.errors.append(error)
            start = end
            delay = end - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def panic(self) -> None:
        for message in panic_messages():
            self.midi_out.send_message(message)

    def close(self) -> None:
        if not self._running:
            return
        self._running = False
        self._worker.join(timeout=2)
        self.panic()
        self.midi_in.cancel_callback()
        self.midi_in.close_port()
        self.midi_out.close_port()
        del self.midi_in, self.midi_out

    def __enter__(self) -> RtMidiPorts:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_ports(process: ProcessFn, api: str = "jack", connect_in: str | None = None,
               connect_out: str | None = None) -> JackPorts | RtMidiPorts:
    """The ports for ``api`` (one of `MIDI_APIS`), driving ``process``."""
    if api == "jack":
        return JackPorts(process, [connect_in] if connect_in else [], [connect_out] if connect_out else [])
    if api in _RTMIDI_APIS:
        return RtMidiPorts(process, api, connect_in, connect_out)
    raise PortError(f"unknown MIDI API {api!r}; accepted: {', '.join(MIDI_APIS)}")
