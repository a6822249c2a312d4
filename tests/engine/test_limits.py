"""Issue 9: the limits are explicit, enforced where documented, and SECURITY.md states the code's numbers.

- gRPC: the engine sets its receive limit (GRPC_MAX_RECEIVE_BYTES = MIDI_MAX_BYTES + 1 MiB); a
  request above it gets RESOURCE_EXHAUSTED from gRPC, one just under it but over the MIDI limit
  gets INVALID_ARGUMENT naming ``midi``; the engine stays SERVING either way.
- SECURITY.md's list of limits quotes engine/config.py's values.
"""
from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest

from bridge.client import RequestRejected
from engine import config
from protos.cadenza.v1 import engine_pb2 as pb

SECURITY = Path(__file__).resolve().parents[2] / "SECURITY.md"


def _render_status(engine, midi: bytes) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        engine.render(midi, 48000)
    return caught.value


def test_an_oversized_request_is_refused_not_a_crash(engine):
    huge = b"MThd" + bytes(config.GRPC_MAX_RECEIVE_BYTES + 1024)
    error = _render_status(engine, huge)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED, error
    engine.check()  # still SERVING

    over_midi_limit = b"MThd" + bytes(config.MIDI_MAX_BYTES)  # inside the gRPC limit, over the MIDI one
    error = _render_status(engine, over_midi_limit)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and "midi" in str(error)
    assert str(config.MIDI_MAX_BYTES) in str(error)

    with pytest.raises(RequestRejected) as caught:  # Generate and Describe have the same ceiling
        engine.describe("x" * (config.GRPC_MAX_RECEIVE_BYTES + 1))
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    engine.check()
    assert engine.describe("a short calm piano piece", pb.Overrides(bars=4)).bars == 4


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_security_md_states_the_limits_the_code_enforces():
    text = SECURITY.read_text()
    assert _number(re.search(r"prompt 1-([\d,]+) characters", text).group(1)) == config.PROMPT_MAX_CHARS
    tempo = re.search(r"tempo (\d+)-(\d+) BPM", text)
    assert (float(tempo.group(1)), float(tempo.group(2))) == (config.TEMPO_MIN_BPM, config.TEMPO_MAX_BPM)
    assert _number(re.search(r"bars 1-(\d+)", text).group(1)) == config.BARS_MAX
    midi = re.search(r"MIDI input (\d+) MiB and (\d+) tracks", text)
    assert _number(midi.group(1)) * 1024 * 1024 == config.MIDI_MAX_BYTES
    assert _number(midi.group(2)) == config.PARTS_MAX
    assert _number(re.search(r"renders up to ([\d,]+) s of audio", text).group(1)) == config.RENDER_MAX_SECONDS
    grpc_limits = re.search(r"requests of at most (\d+) MiB.*?replies of at most (\d+) MiB", text, re.S)
    assert _number(grpc_limits.group(1)) * 1024 * 1024 == config.GRPC_MAX_RECEIVE_BYTES
    assert _number(grpc_limits.group(2)) * 1024 * 1024 == config.GRPC_MAX_SEND_BYTES
    assert f"{config.ENGINE_WORKERS} requests work at once and {config.ENGINE_QUEUE} wait" in text


def test_security_md_states_the_hostile_client_limits_the_code_enforces():
    """Issue 18's limits: each number SECURITY.md promises is the one in engine/config.py."""
    text = " ".join(SECURITY.read_text().split())  # one line: phrases may wrap
    gib = 1024**3
    assert f"An error's text is cut at {config.ERROR_DETAILS_MAX_CHARS:,} characters" in text
    assert f"1-{config.TICKS_PER_QUARTER_MAX:,} ticks per quarter note" in text
    assert f"at most {config.MIDI_MAX_NOTES:,} notes" in text
    assert f"at most {config.MIDI_MAX_NOTE_BARS:,} bar-notes" in text
    assert (f"{config.RENDER_MEMORY_BASE_BYTES // 1024**2} MiB + 8 bytes x frames x ({config.RENDER_MEMORY_BUFFERS} + "
            f"{config.RENDER_MEMORY_BUFFERS_PER_PART} x parts)") in text
    assert f"above {config.RENDER_MEMORY_MAX_BYTES // gib} GiB it is refused" in text
    assert f"(`RLIMIT_AS`) of {config.RENDER_WORKER_ADDRESS_SPACE_BYTES // gib} GiB" in text
    assert f"only the last {config.RENDER_WORKER_STDERR_KEEP_BYTES // 1024} KiB are kept" in text
    assert f"within {config.STREAM_WRITE_TIMEOUT_SECONDS:g} s (`--write-timeout`)" in text
    assert f"health checks run on {config.HEALTH_THREADS} threads of their own" in text
    assert (f"at most {config.HEALTH_WATCH_PER_PEER} `Watch` streams are open from one address and "
            f"{config.HEALTH_WATCH_MAX} in all") in text
    assert (f"in-flight ones have {config.SHUTDOWN_GRACE_SECONDS:g} s to finish, then they are told to stop; "
            f"a request still running {config.SHUTDOWN_ABANDON_SECONDS:g} s later") in text
    assert f"a verdict's reason is at most {config.REASON_MAX_CHARS:,} characters" in text
    assert f"at most {config.ADD_MAX_PARTS} at a time and {config.PARTS_MAX} parts in all" in text
    assert f"would pass {config.TAKE_MIDI_MAX_BYTES / 1024**2:g} MiB is not stored" in text
