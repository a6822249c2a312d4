"""What a clip folder holds besides the audio: the spec as JSON, the render options the spec
decides, the picture's title.

Shared through bridge/clip_folder.py by `generate`, `export`, the co-creation verbs and `batch`,
so every clip folder is alike.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protos.cadenza.v1 import engine_pb2 as pb


def spec_json(spec: pb.MusicSpec) -> dict:
    """The spec as spec.json holds it: every field, sources as plain words (the shape of MusicSpec.to_json)."""
    from google.protobuf.json_format import MessageToDict

    data = MessageToDict(spec, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    data["sources"] = {k: v.removeprefix("SOURCE_").lower() for k, v in data.get("sources", {}).items()}
    data["seed"] = int(data["seed"])
    return data


def render_options(spec: pb.MusicSpec) -> dict:
    """RenderRequest fields the generated spec decides: style (effect chains), roles, bars."""
    return {"style": spec.style, "roles": {p.name: p.role for p in spec.parts}, "bars": spec.bars}


def picture_title(spec: pb.MusicSpec) -> str:
    """clip.png's title (the engine draws the picture and adds the mix's loudness)."""
    return (f"{spec.style}, {spec.key.tonic} {spec.key.mode}, {spec.meter.numerator}/{spec.meter.denominator}, "
            f"{spec.tempo_bpm:g} BPM, {spec.bars} bars")
