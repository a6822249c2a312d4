"""Proto <-> domain conversion for the engine's messages, as module functions."""
from __future__ import annotations

from engine.music.spec import MusicSpec, Source
from engine.understand.prompt import Overrides
from protos.cadenza.v1 import engine_pb2 as pb

_SOURCE_TO_PB = {
    Source.EXPLICIT: pb.SOURCE_EXPLICIT, Source.CONTEXT: pb.SOURCE_CONTEXT,
    Source.INFERRED: pb.SOURCE_INFERRED, Source.DEFAULT: pb.SOURCE_DEFAULT,
}
_SOURCE_FROM_PB = {value: key for key, value in _SOURCE_TO_PB.items()}


def overrides_from_pb(message: pb.Overrides) -> Overrides:
    """The overrides a request sets; unset proto3 optionals stay None."""
    def get(name: str):
        return getattr(message, name) if message.HasField(name) else None
    return Overrides(tempo_bpm=get("tempo_bpm"), key=get("key"), meter=get("meter"),
                     bars=get("bars"), seed=get("seed"), start_bar=get("start_bar"), chords=get("chords"),
                     quantize=get("quantize"))


def overrides_to_pb(overrides: Overrides) -> pb.Overrides:
    fields = {k: v for k, v in vars(overrides).items() if v is not None}
    return pb.Overrides(**fields)


def spec_to_pb(spec: MusicSpec) -> pb.MusicSpec:
    return pb.MusicSpec(
        prompt=spec.prompt, tempo_bpm=spec.tempo_bpm,
        key=pb.Key(tonic=spec.key.tonic, mode=spec.key.mode),
        meter=pb.Meter(numerator=spec.meter.numerator, denominator=spec.meter.denominator),
        bars=spec.bars, start_bar=spec.start_bar,
        parts=[pb.Part(name=p.name, role=p.role, instrument=p.instrument, program=p.program,
                       is_drum=p.is_drum, low=p.low, high=p.high) for p in spec.parts],
        style=spec.style, mood=spec.mood, arc=spec.arc, swing=spec.swing, seed=spec.seed, energy=spec.energy,
        quantize=spec.quantize,
        sources={name: _SOURCE_TO_PB[source] for name, source in spec.sources.items()},
        notes=spec.notes, chords=spec.chords,
    )


def spec_from_pb(message: pb.MusicSpec) -> MusicSpec:
    from engine.music.spec import Part
    from engine.music.theory import Key, Meter
    return MusicSpec(
        prompt=message.prompt, tempo_bpm=message.tempo_bpm,
        key=Key(message.key.tonic, message.key.mode),
        meter=Meter(message.meter.numerator, message.meter.denominator),
        bars=message.bars, start_bar=message.start_bar,
        parts=[Part(name=p.name, role=p.role, instrument=p.instrument, program=p.program,
                    is_drum=p.is_drum, low=p.low, high=p.high) for p in message.parts],
        style=message.style, mood=message.mood, arc=message.arc, swing=message.swing,
        seed=message.seed, energy=message.energy, quantize=message.quantize,
        sources={name: _SOURCE_FROM_PB[value] for name, value in message.sources.items()},
        notes=list(message.notes), chords=list(message.chords),
    )
