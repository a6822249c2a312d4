"""The render runs in a worker process: the same audio, and a crashing or hanging plugin only costs an error.

The misbehaving plugins are real VST3 bundles compiled here: a shared library whose load-time
constructor hangs forever or aborts the process, the two ways a broken third-party plugin most
often takes a host down. pedalboard's ``load_plugin`` really loads them (dlopen).
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from plugin_host.instruments import PluginError, load_plugin
from plugin_host.render import render
from plugin_host.worker import RenderFailed, RenderTimeout
from tests.plugin_bundles import misbehaving_bundle as _bundle
from tests.plugin_host.clip_scores import ROLES

RATE = 48000

def test_the_worker_renders_the_same_audio_as_in_process(score):
    progress: list[float] = []
    isolated = render(score, RATE, roles=ROLES, style="pop", progress=progress.append)
    local = render(score, RATE, roles=ROLES, style="pop", isolate=False)
    np.testing.assert_array_equal(isolated.mix, local.mix)
    assert list(isolated.parts) == list(local.parts)
    assert progress and progress[-1] == 1.0 and progress == sorted(progress)


def test_a_hanging_plugin_is_stopped_after_the_timeout_and_named(score, tmp_path):
    bundle = _bundle(tmp_path, "Hang", crash=False)
    started = time.monotonic()
    with pytest.raises(RenderTimeout) as caught:
        render(score, RATE, roles=ROLES, plugins={"bass": str(bundle)}, timeout=3.0)
    assert time.monotonic() - started < 30
    assert str(bundle) in str(caught.value) and "render stopped after 3 s" in str(caught.value)
    assert caught.value.plugin == str(bundle)


def test_a_crashing_plugin_kills_only_the_worker(score, tmp_path):
    bundle = _bundle(tmp_path, "Crash", crash=True)
    with pytest.raises(RenderFailed) as caught:
        render(score, RATE, roles=ROLES, plugins={"chords": str(bundle)})
    assert "worker died (signal 6)" in str(caught.value) and str(bundle) in str(caught.value)
    # this process is fine and renders on
    assert render(score, RATE, roles=ROLES, bars=1, isolate=False).frames > 0


def test_a_file_that_is_not_a_plugin_is_refused_with_its_name(score, tmp_path):
    fake = tmp_path / "synth.so"
    fake.write_bytes(b"\x7fELF not really")
    with pytest.raises(PluginError, match=r"synth\.so: is not a VST3 or AU plugin"):
        render(score, RATE, plugins={"bass": str(fake)})
    empty = tmp_path / "Empty.vst3"
    empty.mkdir()
    with pytest.raises(PluginError, match=r"Empty\.vst3: could not be loaded"):
        load_plugin(empty)


def _idle_pid() -> int | None:
    from plugin_host import worker

    with worker._idle_lock:
        return worker._idle[0].process.pid if worker._idle else None


def test_one_worker_renders_job_after_job_and_a_crash_gets_a_fresh_one(score, tmp_path):
    """The worker persists (imports and loaded plugins paid once); after a crash it is replaced, not reused."""
    first = render(score, RATE, roles=ROLES, bars=1)
    pid = _idle_pid()
    assert pid is not None
    again = render(score, RATE, roles=ROLES, bars=1)
    assert _idle_pid() == pid  # the same process rendered both
    np.testing.assert_array_equal(first.mix, again.mix)
    with pytest.raises(RenderFailed, match="worker died"):
        render(score, RATE, roles=ROLES, plugins={"bass": str(_bundle(tmp_path, "Crash", crash=True))})
    after = render(score, RATE, roles=ROLES, bars=1)
    assert _idle_pid() not in (None, pid)  # a new worker, started after the crash
    np.testing.assert_array_equal(after.mix, first.mix)


def test_a_second_render_of_the_same_notes_takes_every_part_rendered_before_and_sounds_the_same(score):
    first = render(score, RATE, roles=ROLES, style="pop", bars=4)
    again = render(score, RATE, roles=ROLES, style="pop", bars=4)
    assert again.reused == sorted(again.parts)  # every part, from the worker's cache
    for name in first.parts:
        np.testing.assert_array_equal(first.parts[name], again.parts[name])
    np.testing.assert_array_equal(first.mix, again.mix)


def test_a_part_whose_notes_changed_is_rendered_again_and_the_others_are_taken_as_they_were(score):
    from symusic import Note

    render(score, RATE, roles=ROLES, style="pop", bars=4)
    varied = score.copy()
    bass = next(track for track in varied.tracks if track.name == "bass")
    bass.notes.append(Note(240, 120, 40, 100))  # a vary of the bass: one note more
    stems = render(varied, RATE, roles=ROLES, style="pop", bars=4)
    assert "bass" not in stems.reused and set(stems.reused) == set(stems.parts) - {"bass"}
    plain = render(varied, RATE, roles=ROLES, style="pop", bars=4, isolate=False)  # no cache at all
    np.testing.assert_array_equal(stems.mix, plain.mix)


def test_parts_rendered_ahead_while_the_clip_is_composed_are_taken_by_its_render(score):
    from plugin_host.render import render_ahead

    score = score.copy()
    for track in score.tracks:  # notes no earlier render of this module played
        track.notes.append(type(track.notes[0])(960, 120, 77, 64))
    partial = score.copy()
    del partial.tracks[2:]  # compose has finished the first two parts
    assert render_ahead(partial, [0, 1], RATE, style="pop", roles=ROLES, bars=4)
    stems = render(score, RATE, roles=ROLES, style="pop", bars=4)  # at once: it waits for the parts claimed
    assert stems.reused == sorted(score.tracks[i].name for i in (0, 1))
    plain = render(score, RATE, roles=ROLES, style="pop", bars=4, isolate=False)
    np.testing.assert_array_equal(stems.mix, plain.mix)
