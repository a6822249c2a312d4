"""What a clip folder holds besides the audio: the spec as JSON, the render options the spec decides, the picture.

Shared by `generate`, the co-creation verbs' `export` and `batch`, so every clip folder is alike.
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


def clip_picture(result: pb.GenerateResult, audio) -> bytes:
    """clip.png: a piano roll per part and the mix waveform, titled with the spec and loudness."""
    from symusic import Score

    from plugin_host.picture import clip_png

    spec = result.spec
    title = (f"{spec.style}, {spec.key.tonic} {spec.key.mode}, {spec.meter.numerator}/{spec.meter.denominator}, "
             f"{spec.tempo_bpm:g} BPM, {spec.bars} bars: mix {audio.loudness_lufs:.1f} LUFS, "
             f"{audio.true_peak_dbtp:.1f} dBTP")
    return clip_png(Score.from_midi(result.midi), audio.mix, audio.sample_rate, title, spec.bars)
