"""spec.json has one shape: the engine's MusicSpec.to_json and the client's spec_json(proto) agree."""
from __future__ import annotations

import json

from bridge.clip_content import spec_json
from engine.serving.convert import spec_to_pb
from engine.understand.prompt import Overrides, understand


def test_the_engine_and_the_client_write_the_same_spec_json() -> None:
    spec = understand("a jazz trio in F dorian, 7/4, 12 bars, swing, getting louder", Overrides(seed=5))
    engine_side = json.loads(json.dumps(spec.to_json()))
    client_side = json.loads(json.dumps(spec_json(spec_to_pb(spec))))
    assert engine_side == client_side
