"""Ardour sessions judged by Ardour itself: `ardour7-lua` reports each region's sample, and
`ardour7-export` renders the session so the stem's click is found at that sample (+/-1).

Ardour runs on its own dummy backend (no JACK server is shared). About 25 s in all.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
from wavinfo import WavInfoReader

from bridge.timeline.ardour import (
    ArdourSession,
    ArdourSessionError,
    find_session,
    region_positions_lua,
    run_lua,
    tempo_map_from_session,
)
from bridge.timeline.place import place

pytestmark = [
    pytest.mark.ardour,
    pytest.mark.skipif(shutil.which("ardour7-lua") is None or shutil.which("ardour7-export") is None,
                       reason="Ardour 7 is not installed (apt-get install ardour); .ci/run installs it"),
]
EXPORT_TIMEOUT_S = 60  # a good export takes about 5 s
EXPORT_ATTEMPTS = 3
CLICK_THRESHOLD = 0.05  # the click is 0.5 full scale; everything else is digital silence


def _regions(folder: Path, snapshot: str) -> tuple[float, dict[str, tuple[int, int, str]]]:
    """(tempo at 0, {track: (position samples, length samples, "bar|beat|tick")}) as Ardour reports them
    after loading the snapshot."""
    out = run_lua(region_positions_lua(ArdourSession(folder, snapshot)))
    tempo, regions = None, {}
    for line in out.splitlines():
        if line.startswith("TEMPO "):
            tempo = float(line.removeprefix("TEMPO "))
        if line.startswith("REGION "):
            track, position, length, bbt = line.removeprefix("REGION ").split("\t")
            regions[track] = (int(position), int(length), bbt)
    return tempo, regions


def _export_first_click(folder: Path, snapshot: str, out: Path) -> int | None:
    """One `ardour7-export` run: the first sample above the click threshold, or None if it gave no audio."""
    try:
        done = subprocess.run(["ardour7-export", "-o", str(out), str(folder), snapshot], capture_output=True,
                              text=True, timeout=EXPORT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:  # run() has killed the hung exporter
        return None
    if not out.is_file() or soundfile.info(str(out)).frames == 0:
        print(f"ardour7-export gave no audio (exit {done.returncode}): {done.stderr[-300:]}")
        return None
    audio, rate = soundfile.read(str(out), always_2d=True)
    assert rate == 48000
    hits = np.flatnonzero(np.abs(audio).max(axis=1) > CLICK_THRESHOLD)
    assert hits.size, "the export is silent"
    return int(hits[0])


def _assert_export_click_at(folder: Path, snapshot: str, out: Path, expected: int) -> None:
    """Ardour's export of the snapshot has its first click at ``expected`` (+/-1 sample).

    7.3's headless exporter is not fully deterministic: on this machine 1 export in 15 of one
    unchanged session came out 16 samples early as a whole, and some runs hang in its butler
    thread or crash at exit after writing (PLATFORM.md). So a run that gives no audio, or one
    that misses, is repeated, up to EXPORT_ATTEMPTS runs; every result is in the failure message.
    The regions' positions themselves are asserted exactly, from Ardour's session model.
    """
    results = []
    for attempt in range(EXPORT_ATTEMPTS):
        first = _export_first_click(folder, snapshot, out.with_name(f"{out.stem}-{attempt}{out.suffix}"))
        results.append(first)
        if first is not None and abs(first - expected) <= 1:
            return
    raise AssertionError(f"expected the first click at sample {expected}; exports gave {results}")


def test_new_session_holds_the_stems_at_the_bar(tmp_path: Path, clip_folder) -> None:
    clip = clip_folder(tempo_bpm=100.0, start_bar=3)
    placement = place(clip, tmp_path / "song")
    assert placement.project == tmp_path / "song" / "song.ardour"
    expected = 230400  # bar 3 at 100 BPM in 4/4: 8 beats = 4.8 s = 230400 samples at 48 kHz

    tempo, regions = _regions(tmp_path / "song", "song")
    assert tempo == 100.0
    assert set(regions) == {"cadenza bass", "cadenza drums"}
    for track, (position, length, bbt) in regions.items():
        assert position == expected, track
        assert length == round(4.8 * 48000), track  # 2 bars at 100 BPM
        assert bbt == "3|1|0", track                # Ardour's own bar|beat|tick of the region
    for path in placement.media:
        assert WavInfoReader(str(path)).bext.time_reference == expected
    tempo = tempo_map_from_session(placement.project)
    assert tempo.tempos[0].bpm == 100.0

    _assert_export_click_at(tmp_path / "song", "song", tmp_path / "export.wav", expected)


def test_existing_session_with_a_tempo_change_gets_a_new_snapshot(tmp_path: Path, clip_folder) -> None:
    folder = tmp_path / "existing"
    # Ardour makes the session and its tempo map: 120 BPM, 90 BPM from beat 16 (bar 5).
    run_lua(f"""
ARDOUR.config():set_hide_dummy_backend(false)
AudioEngine:set_backend("None (Dummy)", "", "")
AudioEngine:set_sample_rate(48000)
AudioEngine:start(false)
local s = create_session("{folder}", "existing", 48000)
s:new_audio_track(1, 2, nil, 1, "Vocals", ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true)
local tm = Temporal.TempoMap.fetch_writable()
tm:set_tempo(Temporal.Tempo(120, 120, 4), Temporal.timepos_t(0))
tm:set_tempo(Temporal.Tempo(90, 90, 4), Temporal.timepos_t.from_ticks(Temporal.ticks_per_beat * 16))
Temporal.TempoMap.update(tm)
s:save_state("", false, false, false, false, false)
close_session()
print("CADENZA-OK")
""")
    original = (folder / "existing.ardour").read_bytes()

    with pytest.raises(ArdourSessionError, match="44100 Hz but the session runs at 48000 Hz"):
        place(clip_folder(sample_rate=44100), folder, 2)
    assert sorted(p.name for p in folder.glob("*.ardour")) == ["existing.ardour"], "a refusal leaves nothing"

    placement = place(clip_folder(tempo_bpm=90.0), folder, 6)

    assert (folder / "existing.ardour").read_bytes() == original, "the user's snapshot must not change"
    assert placement.project == folder / "existing-cadenza.ardour"
    assert find_session(folder).snapshot == "existing"
    # bar 6 = beat 20: 16 beats at 120 (8 s) + 4 at 90 (2.666... s) = 10.666... s = 512000 samples
    expected = 512000
    tempo, regions = _regions(folder, "existing-cadenza")
    assert tempo == 120.0
    assert {track: (position, bbt) for track, (position, _, bbt) in regions.items()} == \
        {"cadenza bass": (expected, "6|1|0"), "cadenza drums": (expected, "6|1|0")}
    _assert_export_click_at(folder, "existing-cadenza", tmp_path / "export.wav", expected)

    again = place(clip_folder(tempo_bpm=90.0), folder, 7)
    assert again.project == folder / "existing-cadenza-2.ardour"
    # built from the user's snapshot again (not from the first result), so the plain track names are free
    assert set(_regions(folder, "existing-cadenza-2")[1]) == {"cadenza bass", "cadenza drums"}
