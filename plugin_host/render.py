"""Render: Score -> Stems. Every stem spans the clip exactly; sample 0 is its first downbeat.

``render()`` is the entry point the engine calls. By default the work runs in a worker process
(plugin_host/worker.py), so a third-party plugin that crashes or hangs cannot take the engine
down; ``render_in_process()`` (plugin_host/inprocess.py) is that work itself.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from symusic import Score

from engine.errors import Cancelled
from plugin_host.config import DEFAULT_TAIL, RENDER_TIMEOUT_SECONDS, TARGET_LUFS
from plugin_host.inprocess import (
    FileRequest,
    ProgressFn,
    RenderCache,
    RenderOptionError,
    RenderOptions,
    bar_ticks,
    clip_seconds,
    first_tempo,
    render_in_process,
    tick_to_second,
)
from plugin_host.stems import BufferFn, FileFn, StemFiles, Stems
from plugin_host.worker import render_isolated, warm

__all__ = ["FileRequest", "RenderCache", "RenderOptionError", "RenderOptions", "bar_ticks", "clip_seconds",
           "first_tempo", "render", "render_ahead", "render_in_process", "tick_to_second"]


def render(score: Score, sample_rate: int = 48000, *, tail: str = DEFAULT_TAIL, soundfont: Path | None = None,
           plugins: dict[str, str] | None = None, presets: dict[str, str] | None = None, style: str | None = None,
           roles: dict[str, str] | None = None, bars: int | None = None, loudness_lufs: float = TARGET_LUFS,
           effects_on: bool = True, progress: ProgressFn | None = None, isolate: bool = True,
           timeout: float = RENDER_TIMEOUT_SECONDS, should_stop: Callable[[], bool] | None = None,
           sounds: dict[str, str] | None = None, prompt: str = "",
           treatments: tuple[str, ...] | list[str] | None = None, on_buffer: BufferFn | None = None,
           files: FileRequest | None = None, on_file: FileFn | None = None) -> Stems | StemFiles:
    """Render every track to a stem, mix and master; in a worker process unless ``isolate`` is False.

    Raises RenderOptionError for bad options, and (from the worker) RenderFailed / RenderTimeout
    naming the plugin at work when a render crashes or hangs. When ``should_stop`` turns true the
    render ends with Cancelled (the worker is killed at once). ``sounds``, ``prompt`` and
    ``treatments`` choose sources and genre processing (RenderOptions says how). ``on_buffer`` is called as
    each stem (then the mix) is ready, before the later ones: from a worker, as its samples arrive.
    With ``files`` (a FileRequest) the stems come back encoded, as StemFiles, with clip.png if it asks for
    one; ``on_file`` is called as each file is ready.
    """
    options = RenderOptions(tail=tail, soundfont=Path(soundfont) if soundfont else None, plugins=dict(plugins or {}),
                            presets=dict(presets or {}), style=style or None, roles=dict(roles or {}), bars=bars,
                            loudness_lufs=loudness_lufs, effects=effects_on, sounds=dict(sounds or {}),
                            prompt=prompt or "",
                            treatments=tuple(treatments) if treatments is not None else None).check()
    if files is not None:
        files.check()
    if isolate:
        return render_isolated(score, sample_rate, options, progress, timeout, should_stop, on_buffer, files, on_file)

    def status(fraction: float, doing: str) -> None:
        if should_stop and should_stop():
            raise Cancelled(f"render stopped while {doing}")
        if progress:
            progress(fraction)

    stems = render_in_process(score, sample_rate, options, status)
    if files is not None:
        return _as_files(stems, files, score, bars, on_file)
    for name in [*stems.parts, "mix"] if on_buffer else []:
        on_buffer(stems, name)
    return stems


def _as_files(stems: Stems, request: FileRequest, score: Score, bars: int | None,
              on_file: FileFn | None) -> StemFiles:
    """What a worker sends for a file request, made in this process."""
    from plugin_host.encode import deliver

    delivered = StemFiles(**stems.report(), channels=stems.channels, frames=stems.frames, parts=list(stems.parts))

    def keep(name: str, data: bytes) -> None:
        delivered.files[name] = data
        if on_file is not None:
            on_file(delivered, name, data)

    delivered.picture = deliver(stems, request, score, bars, keep)
    return delivered


def render_ahead(score: Score, indexes: list[int], sample_rate: int, *, tail: str = DEFAULT_TAIL,
                 style: str | None = None, roles: dict[str, str] | None = None, bars: int | None = None,
                 prompt: str = "", sounds: dict[str, str] | None = None) -> bool:
    """Have the render worker render the parts at ``indexes`` of ``score`` (a clip still being composed:
    its first tracks) into its cache now, without waiting; a ``render`` of the finished clip with the same
    options then takes them as they are. False when no worker was idle to take them."""
    options = RenderOptions(tail=tail, style=style or None, roles=dict(roles or {}), bars=bars,
                            sounds=dict(sounds or {}), prompt=prompt or "").check()
    return warm(score, sample_rate, options, indexes)
