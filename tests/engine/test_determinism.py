"""The same request with the same seed gives the same MIDI bytes, whatever else the process is doing
and whichever replica answers: the promise replicas sharing one store rest on (tests/test_replicas.py
checks it end to end through three engine processes).

Real parts: the committed part and melody models, SQLite stores on disk.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.compose.pipeline import compose
from engine.music.midi import score_to_smf
from engine.serving.cocreation import CoCreation
from engine.serving.convert import overrides_from_pb
from engine.sessions.store import open_store
from engine.understand.prompt import understand
from protos.cadenza.v1 import engine_pb2 as pb

PROMPT = "a calm piano tune with bass"  # the bass and the piano are the part model's


def _spec(seed: int, bars: int = 2):
    return understand(PROMPT, overrides_from_pb(pb.Overrides(bars=bars, seed=seed)))


def _digest(seed: int) -> str:
    return hashlib.sha1(score_to_smf(compose(_spec(seed)))).hexdigest()


def test_clips_composed_at_once_on_other_threads_are_the_clips_composed_alone() -> None:
    seeds = [1, 2, 3, 4]
    alone = {seed: _digest(seed) for seed in seeds}
    together: dict[int, str] = {}
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            together[seed] = _digest(seed)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in seeds + seeds]  # each seed twice at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert together == alone, "a clip composed beside other requests differs from the same request alone"


def _copy_session(source, target, session: str) -> None:
    """The session's takes and verdicts as another replica finds them when the one that made the takes
    died before storing their likelihoods (or a verdict came before the likelihood was stored)."""
    for take in source.history(session):
        features = {k: v for k, v in take.features.items() if k != "likelihood"}
        target.add(replace(take, features=features, verdict="", reason="", rating=0))
    for v in source.verdicts(session):
        target.set_verdict(session, v["take"], v["verdict"], v["reason"], v["rating"])


def test_a_session_gives_the_same_vary_whether_or_not_its_likelihoods_were_stored_yet(tmp_path: Path) -> None:
    first = CoCreation(open_store(tmp_path / "a"))
    second = CoCreation(open_store(tmp_path / "b"))
    try:
        take, _ = first.generate("s", _spec(5), compose, candidates=1)
        varied = first.vary("s", take.id, [], 0.5, 11, candidates=1)
        first.verdict("s", take.id, "reject", "too busy", 0)
        first.verdict("s", varied.id, "keep", "", 0)
        again = first.vary("s", varied.id, [], 0.8, 21, candidates=1)
        first.verdict("s", again.id, "reject", "", 0)
        first.settle()  # every likelihood stored in the first store
        assert all("likelihood" in v["features"] for v in first.store.verdicts("s"))
        _copy_session(first.store, second.store, "s")

        taste_first, taste_second = first.taste("s"), second.taste("s")
        assert np.array_equal(taste_first.weights, taste_second.weights)
        assert taste_first.bias == taste_second.bias
        # the likelihoods the second computed when asked are the ones the first stored in the background
        stored = {v["take"]: v["features"]["likelihood"] for v in first.store.verdicts("s")}
        assert {v["take"]: v["features"]["likelihood"] for v in second.store.verdicts("s")} == stored

        a = first.vary("s", varied.id, [], 0.5, 99, candidates=4)
        b = second.vary("s", varied.id, [], 0.5, 99, candidates=4)
        assert a.midi == b.midi and a.seed == b.seed
    finally:
        for co in (first, second):
            co.settle()
            co.store.close()
