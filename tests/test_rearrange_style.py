"""`rearrange --style`: the model's melody keeps every note; the other parts take the new style.

Through the real engine process; MIDI read back by mido (tests.test_cocreation.read_midi); what
the new style asks for is read from engine/catalog/data/styles.toml by tomllib, not from the arranger.
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import symusic

from bridge.client import EngineClient, RequestRejected
from engine.catalog.instruments import lookup
from protos.cadenza.v1 import engine_pb2 as pb
from tests.conftest import run_cli
from tests.test_cocreation import BAR, read_midi

STYLES = {s["name"]: s for s in tomllib.loads(
    (Path(__file__).resolve().parents[1] / "engine/catalog/data/styles.toml").read_text())["style"]}


def onsets_per_bar(notes: list, pitch: int | None, bars: int) -> list[int]:
    return [len({n[0] for n in notes if (pitch is None or n[1] == pitch) and b * BAR <= n[0] < (b + 1) * BAR})
            for b in range(bars)]


def hits(pattern: str) -> int:
    return sum(1 for c in pattern if c != "-")


def test_rearrange_in_metal_keeps_the_melody_and_rewrites_the_band(engine: EngineClient, tmp_path: Path) -> None:
    session = "restyle"
    first = engine.generate("a pop tune with flute melody, bass and drums",
                            pb.Overrides(bars=4, seed=4, tempo_bpm=100, key="G major"), session=session)
    assert first.spec.style == "pop"
    done = run_cli("rearrange", first.take, "--style", "metal", "--session", session, "--engine", engine.target,
                   "--json", "--out", str(tmp_path / "metal"))
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    assert made["parent"] == first.take and made["operation"] == "rearrange"
    before, after = read_midi(first.midi), read_midi(Path(made["midi"]).read_bytes())
    assert after["tracks"]["flute"] == before["tracks"]["flute"]  # the model's melody, note for note
    assert after["tempo"] == before["tempo"] and after["key"] == before["key"]
    metal = STYLES["metal"]
    # the drums are the drum model's in the style's Groove genre (punk: Groove has no metal drummer)
    # under the style's rules: its double kick (styles.toml [style.drums] rules) in the groove bars;
    # the fourth bar ends the phrase, a fill the rules leave free.
    assert after["tracks"]["drums"] != before["tracks"]["drums"]
    assert all(onsets_per_bar(after["tracks"]["drums"], None, 4)), "a bar without drums"
    double_kick = hits(metal["drums"]["rules"]["kick"])
    assert double_kick == 16
    # (a kick the drummer pushes early or late can cross a bar line: counted by time, a bar holds 16 +- 2)
    assert all(abs(n - double_kick) <= 2 for n in onsets_per_bar(after["tracks"]["drums"], 36, 4)[:3])
    # the bass is the part model's on metal's idiom: its rhythm in bars 1 and 3, up to the last beat in bar 2
    # (the model's turn there), and the model's fill in bar 4, where the phrase ends
    bass = onsets_per_bar(after["tracks"]["bass"], None, 4)
    assert bass[0] == bass[2] == hits(metal["bass"])
    turn = [n for n in after["tracks"]["bass"] if BAR <= n[0] < BAR + 3 * BAR // 4]
    assert len({n[0] for n in turn}) == hits(metal["bass"][:12])
    programs = {t.name: t.program for t in symusic.Score.from_midi(Path(made["midi"]).read_bytes()).tracks}
    metal_bass = next(lookup(w) for w in metal["default_parts"] if lookup(w).role == "bass")
    assert programs["bass"] == metal_bass.program
    take = engine.call("GetTake", pb.TakeRequest(session=session, take=made["take"]))
    assert take.spec.style == "metal" and json.loads(take.params_json)["style"] == "metal"


def test_an_unknown_style_is_refused_with_the_accepted_list(engine: EngineClient) -> None:
    take = engine.generate("a pop tune with flute melody, bass and drums", pb.Overrides(bars=2, seed=1),
                           session="restyle-bad").take
    with pytest.raises(RequestRejected, match=r"style: unknown style 'polka-core'; accepted: .*metal.*pop") as caught:
        engine.call("Rearrange", pb.RearrangeRequest(session="restyle-bad", take=take, style="polka-core"))
    assert caught.value.code.name == "INVALID_ARGUMENT"
    history = engine.call("History", pb.HistoryRequest(session="restyle-bad")).takes
    assert [t.take for t in history] == [take]
