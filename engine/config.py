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
MIDI_MAX_NOTES = 200_000          # notes in one MIDI file (a dense 64-part, 256-bar score has fewer)
# Notes x the bars each sounds in (harmony is read bar by bar): bounds the work of reading a clip.
MIDI_MAX_NOTE_BARS = 500_000
TICKS_PER_QUARTER_MAX = 32767     # the SMF header's 15-bit field
# Longest error text sent back (gRPC carries it in a header of at most 16 KiB; a refusal that
# quotes a huge field must still arrive, cut, rather than break the stream).
ERROR_DETAILS_MAX_CHARS = 2000
# Fields a session stores and sends back: each bounded, so every reply fits GRPC_MAX_SEND_BYTES.
REASON_MAX_CHARS = 1000           # a verdict's reason
ADD_MAX_PARTS = 6                 # Accompany: roles to add (bass, drums, chords, pad, keys, melody), each once
# A stored take's MIDI: it must fit a GetTake reply (GRPC_MAX_SEND_BYTES) beside its spec and fields.
TAKE_MIDI_MAX_BYTES = 3 * 1024 * 1024 + 512 * 1024

SAMPLE_RATES = (22050, 44100, 48000, 88200, 96000)
# Longest clip the engine renders: 256 bars of 4/4 at 60 BPM.
RENDER_MAX_SECONDS = 1024.0
# What a render may cost in memory, judged before it starts. Measured peak of a render
# (tests/benchmarks/bench_render_memory.py): under 256 MiB + 8 bytes x frames x (12 + 4 x parts)
# (one part, 120 s at 48 kHz: 0.9 GB; eight parts, 128 s: 2.2 GB). Length x parts x rate whose
# estimate passes the budget is refused with INVALID_ARGUMENT naming ``midi``.
RENDER_MEMORY_BASE_BYTES = 256 * 1024**2  # the worker's interpreter, libraries and SoundFont
RENDER_MEMORY_BUFFERS = 12        # frame-sized float32 stereo buffers a render holds beside its parts
RENDER_MEMORY_BUFFERS_PER_PART = 4
RENDER_MEMORY_MAX_BYTES = 3 * 1024**3
# The render worker's address-space limit (RLIMIT_AS): the budget plus its own 0.6 GB of code and
# thread stacks plus headroom; a render that still outgrows it fails with MemoryError, not the machine.
RENDER_WORKER_ADDRESS_SPACE_BYTES = RENDER_MEMORY_MAX_BYTES + 2 * 1024**3
# Bytes of a render worker's stderr kept for error messages (the rest of a chatty plugin's output is dropped).
RENDER_WORKER_STDERR_KEEP_BYTES = 64 * 1024
DEFAULT_SAMPLE_RATE = 48000
# Audio chunk size over gRPC: 256k frames x 2 channels x 4 bytes = 2 MiB, under the 4 MiB limit.
AUDIO_CHUNK_FRAMES = 256 * 1024
# Encoded stem files (RenderRequest.file_format) go in 2 MiB slices too.
FILE_CHUNK_BYTES = 2 * 1024 * 1024
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
# After the grace, in-flight work is told to stop; a request still running this much later is
# abandoned and the process exits anyway (a stuck request must not keep a stopped engine alive).
SHUTDOWN_ABANDON_SECONDS = 5.0
# A streamed reply message the client has not taken within this many seconds ends the call
# (CANCELLED): a client that opens a stream and never reads it cannot hold a worker.
STREAM_WRITE_TIMEOUT_SECONDS = 20.0
# Health service (open without a token): its own threads, and bounded Watch streams.
HEALTH_THREADS = 4
HEALTH_WATCH_MAX = 512            # open Health/Watch streams in all
HEALTH_WATCH_PER_PEER = 64        # ... from one address (loopback clients all share 127.0.0.1)
DEFAULT_PORT = 50051  # `cadenza serve` without --port
# torch and BLAS threads for inference (text embedding, decoding, taste): the engine's batches are small and
# its requests run side by side, and on a busy 2-core machine a second thread spins instead of
# working (a prompt's embedding took 20x longer at load 12 with 2 threads than with 1).
INFERENCE_THREADS = 1

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
# Phrases and sections come from the clip's form (engine/compose/form.py); DRUM_PHRASE_BARS is the
# phrase length where there is no form (the eval's count of Groove's own phrase ends).
DRUM_PHRASE_BARS = 4
DRUM_TEMPERATURE = 0.65
# A melody bar that repeats the rhythm of the bar before it where the form asks for an answer (a contrast:
# engine/compose/form.py) is drawn again, up to this many times, and the last draw is kept. Both learned
# models, left alone, play one rhythm bar after bar: the corpus model's chorale soprano in quarters, a
# 3/4 tune in half-and-quarter, the part model copying the bar it has just written.
ANSWER_REDRAWS = 4
# Classifier-free guidance on the genre (engine/model/drums.py): the hit logits are pushed this
# far from the 'no genre' prediction toward the genre's (1 = the genre's prediction alone). At 1 the
# GRU mostly continues the real groove it is primed with (a clip's 8 bars were nearly all the genre or
# nearly all not, by which of 8 primers its seed drew); at 2 the genre counts against the primer.
# Measured with the eval's leave-one-drummer-out classifier on compose()'s kit bars (12 seeds, 15
# prompts, 1,440 bars): genre heard in 0.36 of bars at 1, 0.43 at 2, 0.45 at 3, against 0.41 for
# held-out real bars. 3 is a caricature: funk at 104 0.94 (real funk bars 0.38) while jazz at 160 falls
# 0.28 -> 0.09 and pop 0.57 -> 0.33; at 2 no genre falls by more than hip hop at 92 (0.27 -> 0.17).
DRUM_GENRE_GUIDANCE = 2.0
# Energy per bar (engine/compose/drums.py): the section's lift (a B section against its A), the
# prompt's energy (spec.energy - 0.5) and the dynamics arc (its velocity scale - 1) add up; the
# sum is added, times DRUM_DENSITY_PER_ENERGY, to the hit logits of the voices a style rule leaves
# free (busier when positive), and the section and prompt parts scale velocity by
# 1 + DRUM_VELOCITY_PER_ENERGY times their sum (the arc scales velocity itself).
DRUM_SECTION_ENERGY = {"A": 0.0, "B": 0.5}
# The least velocity of a hit a style rule accents (styles.toml rule cell X) and of a section's crash
# and kick: the model's velocity where it would not have played is often a ghost note's.
DRUM_ACCENT_VELOCITY = 100
# The least velocity of a style's timeline stroke (a clave, engine/compose/drums.py): the model's velocity
# for a stroke it is made to play is sometimes a ghost note's (1-10), and a clave is a steady, heard pattern.
DRUM_TIMELINE_MIN_VELOCITY = 50
DRUM_DENSITY_PER_ENERGY = 1.2
DRUM_VELOCITY_PER_ENERGY = 0.2
DRUM_NOTE_TICKS = TICKS_PER_QUARTER // 4  # a drum hit's written length (a 16th)
# A phrase-end bar the drum model leaves nearly empty (fewer hits than this share of the clip's median
# groove bar: hip hop's bar 8 of three hi-hats) keeps the groove's first half (engine/compose/drums.py).
DRUM_THIN_FILL_SHARE = 0.5
# A swung clip swings its drummer at the drummer's own subdivision (engine/compose/drums.py): 16ths when
# at least this share of its time-keeping cymbal's hits fall on a beat's second or fourth 16th (straight
# 16th hats: about half; 8th-note hats: few), and at least DRUM_SIXTEENTH_E_SHARE on its second (the
# "e"): a jazz ride's skip note is a triplet Groove's 16th grid files under the fourth 16th (the "a",
# 0.2-0.35 of a jazz ride's hits, its "e" 0-0.06; hip hop's 16th hats 0.23-0.39 on the "e"), and it is
# a swung 8th groove, else swung a second time, late to the "a".
DRUM_SIXTEENTH_SWING_SHARE = 0.25
DRUM_SIXTEENTH_E_SHARE = 0.1
# An engine the CLI starts in the background (bridge/local_engine.py) stops after this many
# seconds without a request; `cadenza serve --idle-timeout` sets it for any engine.
LOCAL_ENGINE_IDLE_SECONDS = 600.0
# A clip folder's stems and mix are written this many at once (bridge/clip_files.py): encoding and
# fsync run outside the GIL, so a second core shortens the write.
CLIP_WRITE_THREADS = 4
