"""Every limit and default of the engine, in one place.

Bad input is judged against these numbers, and error messages quote them, so the
accepted ranges a user reads are the ones the code enforces.
"""
from __future__ import annotations

from dataclasses import dataclass

TEMPO_MIN_BPM = 20.0
TEMPO_MAX_BPM = 400.0
BARS_MIN = 1
BARS_MAX = 256
PROMPT_MAX_CHARS = 2000
METER_NUMERATOR_MAX = 32
METER_DENOMINATORS = (1, 2, 4, 8, 16, 32)
START_BAR_MIN = 1
START_BAR_MAX = 9999
SEED_MAX = 2**63 - 1
MIDI_MAX_BYTES = 4 * 1024 * 1024
PARTS_MAX = 64

SAMPLE_RATES = (22050, 44100, 48000, 88200, 96000)
# Longest clip the engine renders: 256 bars of 4/4 at 60 BPM. Bounds memory per stem.
RENDER_MAX_SECONDS = 1024.0
DEFAULT_SAMPLE_RATE = 48000
# Audio chunk size over gRPC: 256k frames x 2 channels x 4 bytes = 2 MiB, under the 4 MiB limit.
AUDIO_CHUNK_FRAMES = 256 * 1024
# Largest gRPC message the engine accepts: the biggest valid request (a MIDI_MAX_BYTES clip plus
# its other fields) with headroom; bigger ones get RESOURCE_EXHAUSTED from gRPC before any parsing.
GRPC_MAX_RECEIVE_BYTES = MIDI_MAX_BYTES + 1024 * 1024
# Largest message it sends: one audio chunk (2 MiB) with headroom.
GRPC_MAX_SEND_BYTES = 4 * 1024 * 1024

TICKS_PER_QUARTER = 480

# Requests working at once (one per core) and waiting beyond them; the rest get RESOURCE_EXHAUSTED.
ENGINE_WORKERS = 2
ENGINE_QUEUE = 8
SHUTDOWN_GRACE_SECONDS = 10.0
DEFAULT_PORT = 50051  # `cadenza serve` without --port

# `cadenza train`: optimizer steps from scratch (the shipped checkpoint's run) and when fine-tuning.
TRAIN_SEED = 1234
TRAIN_STEPS = 14000
FINE_TUNE_STEPS = 200


@dataclass(frozen=True)
class Defaults:
    """What the engine assumes when neither the prompt nor the DAW says."""

    tempo_bpm: float = 110.0
    tonic: str = "C"
    mode: str = "major"
    meter: tuple[int, int] = (4, 4)
    bars: int = 8
    start_bar: int = 1
    style: str = "pop"
    mood: str = "neutral"
    arc: str = "steady"
    seed: int = 0


DEFAULTS = Defaults()

# Drums (engine/compose/drums.py): a phrase is this many bars; its last bar is a fill and the next
# one starts a phrase. The drum model's hit temperature (velocity and timing are always sampled as
# learned): at 1.0 consecutive bars differ far more than a Groove drummer's (pattern Jaccard 0.65
# against 0.35); 0.65 keeps the groove steadier (about 0.45) while fills still mark phrase ends.
DRUM_PHRASE_BARS = 4
DRUM_TEMPERATURE = 0.65
DRUM_NOTE_TICKS = TICKS_PER_QUARTER // 4  # a drum hit's written length (a 16th)
# An engine the CLI starts in the background (bridge/local_engine.py) stops after this many
# seconds without a request; `cadenza serve --idle-timeout` sets it for any engine.
LOCAL_ENGINE_IDLE_SECONDS = 600.0
