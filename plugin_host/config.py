"""Every default and limit of the plugin host, in one place.

Error messages quote these names' values, so what a user reads is what the code enforces.
"""
from __future__ import annotations

DEFAULT_SAMPLE_RATE = 48000
STEM_FILE_FORMATS = ("wav", "flac")  # stems and mix as files: Broadcast WAV (with a time reference) or FLAC
STEM_SUBTYPE = "PCM_24"        # ... both 24-bit
FILE_ENCODE_THREADS = 2        # stem files encoded at once, ahead of the one being sent
TARGET_LUFS = -14.0            # integrated loudness of the mix (ITU-R BS.1770-4, via pyloudnorm)
LUFS_RANGE = (-40.0, -5.0)     # accepted loudness targets
TRUE_PEAK_CEILING_DBTP = -1.0  # oversampled true peak of the mix and of every stem
TRUE_PEAK_OVERSAMPLE = 4       # BS.1770-4 Annex 2: 4x at 48 kHz
TRUE_PEAK_TAPS = 48            # ... with a 48-tap interpolation filter (12 per phase)
TRUE_PEAK_BLOCK = 2048         # frames per block; quiet blocks skip the interpolation
TRUE_PEAK_MARGIN_DB = 0.15     # the limiter aims this far under the ceiling (interpolation slack)
LIMITER_LOOKAHEAD_SECONDS = 0.005
LIMITER_RELEASE_SECONDS = 0.060
MASTER_PASSES = 4              # loudness gain + limiting, repeated until both hold

TAIL_POLICIES = ("cut", "ring", "loop")
DEFAULT_TAIL = "cut"
TAIL_MAX_SECONDS = 4.0         # how long notes and effects may ring past the clip's end
TAIL_FLOOR_DB = -70.0          # ring: the tail ends where every stem is this far below the mix peak
FADE_SECONDS = 0.010           # cut/ring: fade at the very end, so the file ends on silence

RENDER_TIMEOUT_SECONDS = 120.0   # a worker that takes longer is stopped; the error names the plugin at work
PLUGIN_LOAD_TIMEOUT_SECONDS = 30.0
IDLE_WORKERS = 1                 # render workers kept alive between renders (imports done, plugins loaded)
WORKER_MAX_RENDERS = 200         # a worker is replaced after this many renders, bounding any slow leak
RENDER_THREADS = 2               # parts rendered at once (SoundFont + built-in effects; plugins go one by one)
PLUGIN_CACHE_SIZE = 8            # plugins a worker keeps loaded between renders (least recently used go)
PART_CACHE_BYTES = 256 * 1024**2  # rendered parts a worker keeps for the next render of the same notes (LRU)
WORKER_HEAP_KEEP_BYTES = 512 * 1024**2  # the worker's malloc keeps this much freed memory for the next render
WORKER_START_SECONDS = 30.0      # a spawned worker's imports (numpy, pedalboard) before the render clock starts

ARC_WINDOW_SECONDS = 3.0       # slow loudness envelope keep_arc restores after a chain (dynamics.py)
ARC_MAX_DB = 12.0              # ... never correcting by more than this
DYNAMICS_RIDE = 0.5            # mix-bus dB per dB of the score's mean velocity per bar (a fader riding the build)
# Roles whose stems are one section: a kit, congas and timbales, taiko and trailer hits share the
# role's level (plugin_host/mix.py section_levels). Two lead instruments each keep a lead's level.
SECTION_ROLES = ("drums",)
