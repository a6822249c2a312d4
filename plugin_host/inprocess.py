"""Rendering in this process: Score -> Stems through instruments, effect chains, tails and the mix.

``render_in_process()`` is the work itself: each part's source (sounds.py: a synth voice, the best
SoundFont bank, a plugin), per-role effect chains (effects.py), the stereo image (stereo.py), genre
processing (treatments.py), the tail policy (tails.py), then the mix and mastering (mix.py). The
worker process runs it; so does ``render(isolate=False)``. The options and their checks live here
too, so both sides share them.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from symusic import Score

from engine.errors import SpecError
from engine.music.theory import Meter
from plugin_host import dynamics, effects, stereo, tails
from plugin_host import sounds as catalog
from plugin_host import treatments as processing
from plugin_host.config import (
    DEFAULT_TAIL,
    LUFS_RANGE,
    PART_CACHE_BYTES,
    PLUGIN_CACHE_SIZE,
    RENDER_THREADS,
    STEM_FILE_FORMATS,
    TARGET_LUFS,
    TRUE_PEAK_CEILING_DBTP,
)
from plugin_host.instruments import PluginError, PluginInstrument, TimedNote, load_plugin, resolve_preset
from plugin_host.mix import master, part_loudness, section_levels, stage_gains, sum_stems
from plugin_host.soundfont import SOUNDFONT_SUFFIXES, SoundFontInstrument, default_soundfont
from plugin_host.stems import Stems
from plugin_host.synth import SynthInstrument

ProgressFn = Callable[[float], None]
StatusFn = Callable[[float, str], None]  # (fraction, what is being done: names the plugin at work)


class RenderOptionError(SpecError):
    """A render option is out of range; ``field`` names it, the message says what is accepted."""


@dataclass(frozen=True)
class RenderOptions:
    """Everything besides the score and the rate that shapes a render.

    ``plugins`` maps a role ("bass") or a part name to a VST3/AU path: an instrument plugin
    replaces the SoundFont for those parts, an effect plugin is appended to their chain.
    ``presets`` maps the same keys to JSON parameter presets for those plugins (a file, or the
    name of a preset shipped in plugin_host/data/presets/<plugin>/). ``roles`` maps
    part (track) names to roles; tracks it does not name get one from their MIDI program.
    ``bars`` fixes the clip's length; without it the clip ends at the bar holding the last note.
    ``sounds`` maps a part name or role to a source (plugin_host/data/sounds.toml: ``synth:NAME``,
    ``bank``, ``gm``); parts it does not name get one from the prompt's words and the style.
    ``prompt`` is the request's text, whose words may pick sources and ``treatments`` (lo-fi,
    pumping, hall); ``treatments`` given explicitly replace that choice (an empty tuple: none).
    """

    tail: str = DEFAULT_TAIL
    soundfont: Path | None = None
    plugins: dict[str, str] = field(default_factory=dict)
    presets: dict[str, str] = field(default_factory=dict)
    style: str | None = None
    roles: dict[str, str] = field(default_factory=dict)
    bars: int | None = None
    loudness_lufs: float = TARGET_LUFS
    effects: bool = True
    sounds: dict[str, str] = field(default_factory=dict)
    prompt: str = ""
    treatments: tuple[str, ...] | None = None

    def check(self) -> RenderOptions:
        """Raise RenderOptionError for anything out of range, before any work starts."""
        try:
            tails.check_policy(self.tail)
        except ValueError as error:
            raise RenderOptionError("tail", str(error).removeprefix("tail ")) from None
        if self.soundfont is not None:
            path = Path(self.soundfont)
            if not path.is_file():
                raise RenderOptionError("soundfont", f"{path} is not a file (give an .sf2 or .sf3 SoundFont)")
            if path.suffix.lower() not in SOUNDFONT_SUFFIXES:
                raise RenderOptionError("soundfont", f"{path} is not an .sf2 or .sf3 file")
        for key, path in self.plugins.items():
            if not key:
                raise RenderOptionError("plugins", f"entry for {path} names no role or part (ROLE=PATH)")
            if not Path(path).exists():
                raise RenderOptionError("plugins", f"{key}={path}: no such plugin file or bundle")
        for key, path in self.presets.items():
            if key not in self.plugins:
                raise RenderOptionError("presets", f"{key}={path}: no plugin is given for {key!r}")
            try:
                resolve_preset(self.plugins[key], path)
            except ValueError as error:
                raise RenderOptionError("presets", f"{key}={error}") from None
        for key, source in self.sounds.items():
            try:
                catalog.check_source(source, f"{key}={source}")
            except catalog.SoundDataError as error:
                raise RenderOptionError("sounds", str(error)) from None
        if self.treatments is not None:
            try:
                catalog.treatments(self.style, requested=tuple(self.treatments))
            except catalog.SoundDataError as error:
                raise RenderOptionError("treatments", str(error).removeprefix("treatments: ")) from None
        low, high = LUFS_RANGE
        if not low <= self.loudness_lufs <= high:
            raise RenderOptionError("loudness_lufs", f"must be {low:g} to {high:g} LUFS, got {self.loudness_lufs:g}")
        if self.bars is not None and self.bars < 1:
            raise RenderOptionError("bars", f"must be at least 1, got {self.bars}")
        return self


@dataclass(frozen=True)
class FileRequest:
    """A render delivered as files: each stem and the mix encoded as ``file_format`` ("wav": 24-bit Broadcast
    WAV placed at ``time_reference`` samples; "flac"), and clip.png titled ``picture_title`` when it is set.
    The render worker encodes them and draws the picture, so the engine only passes bytes on. With ``folder``
    each file is left there whole (a handoff folder, engine/serving/local.py) and its path passed on instead."""

    file_format: str
    time_reference: int = 0
    picture_title: str = ""
    folder: str = ""

    def check(self) -> FileRequest:
        if self.file_format not in STEM_FILE_FORMATS:
            raise RenderOptionError("file_format", f"must be one of {', '.join(STEM_FILE_FORMATS)}, or empty for "
                                                   f"float32 chunks; got {self.file_format!r}")
        if self.time_reference < 0:
            raise RenderOptionError("time_reference", f"must be >= 0 samples, got {self.time_reference}")
        return self


def _stamp(path: Path) -> int:
    """The newest modification time (ns) of a file, or of any file in a bundle directory."""
    if path.is_dir():
        return max((entry.stat().st_mtime_ns for entry in path.rglob("*") if entry.is_file()),
                   default=path.stat().st_mtime_ns)
    return path.stat().st_mtime_ns


class RenderCache:
    """What a long-lived render worker keeps between renders (least recently used dropped): loaded
    plugins, and rendered parts.

    Plugins are keyed by their path and modification time and the preset's, so a rebuilt plugin or an
    edited preset is loaded afresh. A part (its instrument, chain, width and pan: everything before the
    mix) is keyed by all that shapes its sound: its notes in seconds, program, name, index and role, the
    source that plays it (and that file's modification time), the style, prompt and sound choices, the
    tempo, rate and length. A vary of one part re-renders that part only, and parts rendered ahead
    (``warm_parts``, while the rest of the clip is still being composed) are taken as they are. Only the
    worker keeps one: ``render_in_process`` without a cache renders everything, as before.
    """

    def __init__(self, size: int = PLUGIN_CACHE_SIZE, part_bytes: int = PART_CACHE_BYTES) -> None:
        self.size = size
        self._plugins: OrderedDict[tuple, object] = OrderedDict()
        self.part_bytes = part_bytes
        self._parts: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # parts are rendered on several threads
        self._pending: dict[tuple, threading.Event] = {}  # parts some thread is rendering now
        self.part_hits = 0
        self.part_misses = 0

    def part(self, key: tuple) -> np.ndarray | None:
        """A part rendered before with this key (waiting for it if another thread is rendering it now), or
        None: the caller renders it and must then ``keep_part`` (or ``drop_part``) it."""
        while True:
            with self._lock:
                audio = self._parts.get(key)
                if audio is not None:
                    self._parts.move_to_end(key)
                    self.part_hits += 1
                    return audio
                pending = self._pending.get(key)
                if pending is None:
                    self._pending[key] = threading.Event()
                    self.part_misses += 1
                    return None
            pending.wait()  # rendered ahead on another thread: taken when it is done (or rendered here if it failed)

    def keep_part(self, key: tuple, audio: np.ndarray) -> None:
        """Keep a rendered part (read-only) for a later render, within ``part_bytes`` in all."""
        audio.setflags(write=False)  # shared by later renders: nothing may change it in place
        with self._lock:
            self._parts[key] = audio
            self._parts.move_to_end(key)
            while sum(a.nbytes for a in self._parts.values()) > self.part_bytes and len(self._parts) > 1:
                self._parts.popitem(last=False)
            self._done(key)

    def drop_part(self, key: tuple) -> None:
        """The part whose ``part`` returned None was not rendered after all (an error): others may try."""
        with self._lock:
            self._done(key)

    def _done(self, key: tuple) -> None:
        pending = self._pending.pop(key, None)
        if pending is not None:
            pending.set()

    def plugin(self, path: str, preset: Path | None):
        """The plugin at ``path`` with ``preset`` applied, loaded now or earlier."""
        key = (path, _stamp(Path(path)), str(preset) if preset else None, _stamp(preset) if preset else None)
        if key in self._plugins:
            self._plugins.move_to_end(key)
            return self._plugins[key]
        plugin = load_plugin(path, preset)
        self._plugins[key] = plugin
        while len(self._plugins) > self.size:
            self._plugins.popitem(last=False)
        return plugin


def bar_ticks(score: Score) -> int:
    """Ticks in one bar of the score's first meter (4/4 when it has none)."""
    if len(score.time_signatures) == 0:
        return Meter(4, 4).bar_ticks(score.tpq)
    ts = score.time_signatures[0]
    return Meter(ts.numerator, ts.denominator).bar_ticks(score.tpq)


def tick_to_second(score: Score, tick: int) -> float:
    """Seconds at ``tick`` under the score's tempo map."""
    # Tempo as the file stores it (microseconds per quarter), exactly as a DAW reads it.
    tempos = sorted(((t.time, 6e7 / t.mspq) for t in score.tempos), key=lambda x: x[0]) or [(0, 120.0)]
    seconds, last_tick, qpm = 0.0, 0, tempos[0][1]
    for time, next_qpm in tempos:
        if time >= tick:
            break
        seconds += (time - last_tick) / score.tpq * 60.0 / qpm
        last_tick, qpm = time, next_qpm
    return seconds + (tick - last_tick) / score.tpq * 60.0 / qpm


def clip_seconds(score: Score, bars: int | None = None) -> float:
    """The clip's length: ``bars`` bars, or up to the end of the bar holding its last note."""
    per_bar = bar_ticks(score)
    end_ticks = bars * per_bar if bars else -(-max(score.end(), 1) // per_bar) * per_bar
    return tick_to_second(score, end_ticks)


def first_tempo(score: Score) -> float:
    return 6e7 / score.tempos[0].mspq if len(score.tempos) else 120.0


def _part_names(score: Score) -> list[str]:
    names: list[str] = []
    for index, track in enumerate(score.tracks):
        name, n = track.name or f"track{index + 1}", 2
        candidate = name
        while candidate in names:
            candidate, n = f"{name}_{n}", n + 1
        names.append(candidate)
    return names


def _check_finite(audio: np.ndarray, who: str) -> np.ndarray:
    # one pass: a float64 sum of finite float32 samples cannot overflow, so it is finite exactly when they all are
    if not np.isfinite(np.sum(audio, dtype=np.float64)):
        raise PluginError(who, "produced NaN or infinite samples")
    return audio


def render_in_process(score: Score, sample_rate: int, options: RenderOptions,
                      status: StatusFn | None = None, cache: RenderCache | None = None) -> Stems:
    """The render itself, in this process: instruments, effects, stereo image, genre processing,
    tails, mix (with the score's dynamics riding the bus) and mastering.

    Each part's source comes from plugin_host/data/sounds.toml (a synth voice, the best SoundFont
    bank, the pretty_midi GM bank) unless a plugin instrument replaces it; the Stems name it.
    Parts without a third-party plugin render on RENDER_THREADS threads
    (tinysoundfont and pedalboard release the GIL). Parts that involve a third-party plugin render
    one at a time afterwards, each announced first, so when one crashes or hangs the last status
    the worker sent names that plugin. ``cache`` (the render worker's) keeps plugins loaded from
    one render to the next."""
    lock = threading.Lock()
    reached = [0.0]

    def say(fraction: float, doing: str) -> None:  # from any thread; the fraction never goes back
        with lock:
            reached[0] = max(reached[0], fraction)
            if status:
                status(reached[0], doing)

    clip_frames, frames, tempo = _timing(score, sample_rate, options)
    loaded: dict[str, object] = {}

    def plugin_for(key: str):
        if key not in loaded:
            say(0.0, f"loading plugin {options.plugins[key]}")
            preset = options.presets.get(key)
            path = options.plugins[key]
            preset_file = resolve_preset(path, preset) if preset else None
            loaded[key] = cache.plugin(path, preset_file) if cache else load_plugin(path, preset_file)
        return loaded[key]

    names = _part_names(score)
    count = max(1, len(score.tracks))
    jobs: list[tuple[int, str, object, str, str | None]] = []  # (index, name, track, role, plugin key)
    for index, (name, track) in enumerate(zip(names, score.tracks, strict=True)):
        role, key = _role_and_plugin(name, track, options)
        if key:
            plugin_for(key)  # every plugin loads first, one at a time, each announced
        jobs.append((index, name, track, role, key))
    sources: dict[str, str] = {}
    reused: list[str] = []

    def render_part(job: tuple[int, str, object, str, str | None]) -> np.ndarray:
        index, name, track, role, key = job
        plugin = loaded[key] if key else None
        notes = _timed_notes(score, track)
        if plugin is None and cache is not None:  # a built-in part: rendered before?
            audio, sources[name], kept = _cached_part(cache, index, name, role, track, notes, options, sample_rate,
                                                      frames, tempo, say, count)
            if kept:
                reused.append(name)
            return audio
        if plugin is not None and getattr(plugin, "is_instrument", False):
            instrument = PluginInstrument(plugin, sample_rate, name=options.plugins[key])
            sources[name] = f"plugin:{options.plugins[key]}"
        else:
            instrument, sources[name] = instrument_for(name, role, options, sample_rate)
        return _render_part_audio(index, name, role, track, notes, instrument, plugin,
                                  options.plugins.get(key) if key else None, options, sample_rate, frames, tempo,
                                  say, count)

    chosen = catalog.treatments(options.style, options.prompt, options.treatments) if options.effects else []
    # Genre treatments and the ring tail look at every stem; without them a part's tail and its loudness
    # (for the gain staging) are its own, taken on the pool as soon as it is rendered.
    together = bool(chosen) or not tails.stem_by_stem(options.tail)
    measured: dict[str, float] = {}

    def finished(job: tuple[int, str, object, str, str | None]) -> np.ndarray:
        audio = render_part(job)
        if together:
            return audio
        name = job[1]
        audio = tails.apply_tail({name: audio}, clip_frames, options.tail, sample_rate)[name]
        measured[name] = part_loudness(audio, sample_rate)
        return audio

    built_in = [job for job in jobs if job[4] is None]
    rendered: dict[str, np.ndarray] = {}
    with ThreadPoolExecutor(max_workers=RENDER_THREADS) as pool:
        rendered.update(zip((job[1] for job in built_in), pool.map(finished, built_in), strict=True))
    for job in jobs:
        if job[4] is not None:
            rendered[job[1]] = finished(job)
    parts = {name: rendered[name] for name in names}
    roles = {name: role for _, name, _, role, _ in jobs}
    if chosen:
        say(0.86, f"processing: {', '.join(t.name for t in chosen)}")
        parts = processing.apply(parts, roles, chosen, beat_frames(score, sample_rate, frames), 60.0 / tempo,
                                 sample_rate)
    levels = section_levels({name: effects.role_mix(role, options.style).level_lufs for name, role in roles.items()},
                            roles)
    say(0.88, "mixing")
    if together:
        parts = tails.apply_tail(parts, clip_frames, options.tail, sample_rate)
    applied = [t.name for t in chosen]
    if not parts:
        length = clip_frames
        return Stems(sample_rate=sample_rate, parts={}, mix=np.zeros((length, 2), np.float32), clip_frames=clip_frames,
                     sources=sources, treatments=applied, reused=sorted(reused))
    ride = _velocity_ride(score, next(iter(parts.values())).shape[0], sample_rate)
    parts, mix = sum_stems(parts, stage_gains(parts, levels, sample_rate, measured), ride)
    say(0.92, "mastering")
    parts, mix, report = master(parts, mix, sample_rate, options.loudness_lufs, TRUE_PEAK_CEILING_DBTP)
    say(1.0, "done")
    return Stems(sample_rate=sample_rate, parts=parts, mix=mix, clip_frames=clip_frames,
                 loudness_lufs=report.loudness_lufs, true_peak_dbtp=report.true_peak_dbtp, sources=sources,
                 treatments=applied, reused=sorted(reused))


def _render_part_audio(index: int, name: str, role: str, track, notes: list[TimedNote], instrument, plugin,
                       plugin_name: str | None, options: RenderOptions, sample_rate: int, frames: int, tempo: float,
                       say: StatusFn, count: int) -> np.ndarray:
    """One part before the mix: its instrument, its role's chain (and an effect ``plugin``), width and pan."""
    chain = effects.build_chain(effects.role_mix(role, options.style).effects, tempo) if options.effects else []
    if plugin is not None and not getattr(plugin, "is_instrument", False):
        chain.append(plugin)
    say(0.85 * index / count, f"rendering {name} with {instrument.name}")
    audio = _check_finite(instrument.render(notes, frames, track.program, track.is_drum), instrument.name)
    if chain:
        import pedalboard

        who = plugin_name if plugin is not None and plugin in chain else "built-in effects"
        say(0.85 * (index + 0.5) / count, f"processing {name} through {who}")
        board = pedalboard.Pedalboard(chain)
        processed = _check_finite(board(audio.T.copy(), sample_rate, reset=True).T.astype(np.float32), who)
        audio = dynamics.keep_arc(audio, processed, sample_rate)
    mix_data = effects.role_mix(role, options.style)
    if audio.shape[1] == 2:  # widening is processing (off with the effects); the pan is placement
        width = mix_data.width if options.effects else 0.0
        audio = stereo.pan(stereo.widen(audio, width, sample_rate, seed=index), mix_data.pan)
    return audio


def _timed_notes(score: Score, track) -> list[TimedNote]:
    return [TimedNote(tick_to_second(score, n.time), tick_to_second(score, n.time + n.duration), n.pitch, n.velocity)
            for n in track.notes]


def _cached_part(cache: RenderCache, index: int, name: str, role: str, track, notes: list[TimedNote],
                 options: RenderOptions, sample_rate: int, frames: int, tempo: float, say: StatusFn,
                 count: int) -> tuple[np.ndarray, str, bool]:
    """A built-in part from the cache, or rendered now and kept there; the source that plays it; whether
    it came from the cache."""
    instrument, source = instrument_for(name, role, options, sample_rate)
    key = _part_key(index, name, role, track, notes, source, options, sample_rate, frames, tempo)
    if (kept := cache.part(key)) is not None:
        say(0.85 * (index + 1) / count, f"{name}: rendered before")
        return kept, source, True
    return _render_kept(cache, key, index, name, role, track, notes, instrument, options, sample_rate, frames,
                        tempo, say, count), source, False


def _render_kept(cache: RenderCache, key: tuple, index: int, name: str, role: str, track, notes: list[TimedNote],
                 instrument, options: RenderOptions, sample_rate: int, frames: int, tempo: float, say: StatusFn,
                 count: int) -> np.ndarray:
    """A built-in part claimed in ``cache`` (its ``part`` gave None), rendered and kept there; on an error
    the claim is let go, so a waiting render does the part itself."""
    try:
        audio = _render_part_audio(index, name, role, track, notes, instrument, None, None, options, sample_rate,
                                   frames, tempo, say, count)
    except BaseException:
        cache.drop_part(key)
        raise
    cache.keep_part(key, audio)
    return audio


def _timing(score: Score, sample_rate: int, options: RenderOptions) -> tuple[int, int, float]:
    """(the clip's frames, the frames rendered with the tail policy's room, the first tempo)."""
    clip_frames = round(clip_seconds(score, options.bars) * sample_rate)
    return clip_frames, clip_frames + tails.tail_frames(options.tail, sample_rate), first_tempo(score)


def _role_and_plugin(name: str, track, options: RenderOptions) -> tuple[str, str | None]:
    """A part's role (the request's, else its MIDI program's) and the ``plugins`` key that names a plugin for
    it (its name, else its role), if any."""
    role = options.roles.get(name) or effects.role_for_program(track.program, track.is_drum)
    return role, name if name in options.plugins else role if role in options.plugins else None


def warm_parts(score: Score, sample_rate: int, options: RenderOptions, indexes: list[int],
               cache: RenderCache) -> Callable[[], None]:
    """Claim the built-in parts at ``indexes`` of ``score`` in ``cache`` now, and return the work that renders
    them into it as ``render_in_process`` would: a render of the finished clip (whose first tracks these are)
    that starts after the claim waits for them and takes them as they are. The engine sends each part as soon
    as it is composed, while the rest of the clip is still being written."""
    _, frames, tempo = _timing(score, sample_rate, options)
    names = _part_names(score)
    claimed = []  # every part is claimed before the first is rendered: a render arriving meanwhile waits for them
    for index in indexes:
        track, name = score.tracks[index], names[index]
        role, plugin_key = _role_and_plugin(name, track, options)
        if plugin_key:
            continue  # a plugin's part is rendered with the clip, where a crash names it
        notes = _timed_notes(score, track)
        instrument, source = instrument_for(name, role, options, sample_rate)
        key = _part_key(index, name, role, track, notes, source, options, sample_rate, frames, tempo)
        if cache.part(key) is None:
            claimed.append((key, index, name, role, track, notes, instrument))

    def render_claimed() -> None:
        for number, (key, index, name, role, track, notes, instrument) in enumerate(claimed):
            try:
                _render_kept(cache, key, index, name, role, track, notes, instrument, options, sample_rate,
                             frames, tempo, lambda fraction, doing: None, len(score.tracks))
            except BaseException:
                for other in claimed[number + 1:]:  # this one _render_kept let go itself
                    cache.drop_part(other[0])
                raise
    return render_claimed


def _part_key(index: int, name: str, role: str, track, notes: list[TimedNote], source: str,
              options: RenderOptions, sample_rate: int, frames: int, tempo: float) -> tuple:
    """Everything that shapes a built-in part's audio before the mix (RenderCache)."""
    path = Path(source.split(":", 1)[1]) if source.startswith("soundfont:") else None
    return (index, name, str(role), track.program, track.is_drum, source, _stamp(path) if path else None,
            options.style, options.prompt, tuple(sorted(options.sounds.items())), options.effects, sample_rate,
            frames, round(tempo, 6), tuple((n.start, n.end, n.pitch, n.velocity) for n in notes))


def beat_frames(score: Score, sample_rate: int, frames: int) -> list[int]:
    """The frame of every beat (quarter note) up to ``frames``, under the score's tempo map."""
    out, tick = [], 0
    while (frame := round(tick_to_second(score, tick) * sample_rate)) < frames:
        out.append(frame)
        tick += score.tpq
    return out


def instrument_for(name: str, role: str, options: RenderOptions, sample_rate: int):
    """The instrument that plays part ``name`` (sounds.toml's choice) and the source it reports."""
    choice = catalog.choose(name, role, style=options.style, prompt=options.prompt, requested=options.sounds)
    if choice.source.startswith(catalog.SYNTH_PREFIX):
        voice = catalog.voice(choice.source.removeprefix(catalog.SYNTH_PREFIX))
        return SynthInstrument(voice, sample_rate), choice.source
    if choice.source == catalog.GM:
        path = default_soundfont()
    else:
        path = options.soundfont or catalog.find_bank() or default_soundfont()
    return SoundFontInstrument(path, sample_rate), f"soundfont:{path}"


def _velocity_ride(score: Score, frames: int, sample_rate: int) -> np.ndarray | None:
    """The mix-bus gain (linear, float32, per sample) that follows the score's mean velocity per bar, or None."""
    per_bar = bar_ticks(score)
    bars = -(-max(score.end(), 1) // per_bar)
    totals, counts = np.zeros(bars), np.zeros(bars)
    for track in score.tracks:
        for note in track.notes:
            bar = min(bars - 1, note.time // per_bar)
            totals[bar] += note.velocity
            counts[bar] += 1
    velocities = [float(t / c) if c else 0.0 for t, c in zip(totals, counts, strict=True)]
    spans = [(round(tick_to_second(score, b * per_bar) * sample_rate),
              round(tick_to_second(score, (b + 1) * per_bar) * sample_rate)) for b in range(bars)]
    ride_db = dynamics.velocity_ride_db(velocities, spans, frames, sample_rate)
    if not np.any(ride_db):
        return None
    return np.exp(ride_db.astype(np.float32) * np.float32(np.log(10) / 20))  # 10 ** (dB / 20)
