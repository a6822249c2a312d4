"""Bad input, property-based: requests built from the proto's fields, valid or not, sent to a
real engine. Every answer is OK or INVALID_ARGUMENT naming a field; never UNKNOWN or INTERNAL;
health still says SERVING afterwards.

CI sends CADENZA_PROPERTY_EXAMPLES requests per RPC (default 400); the benchmark
`tests/benchmarks/bench_bad_requests.py` sends 10,000.
"""
from __future__ import annotations

import os

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protos.cadenza.v1 import engine_pb2 as pb
from protos.cadenza.v1 import engine_pb2_grpc as pb_grpc
from tests.engine.midi_mutations import mutated_clips

EXAMPLES = int(os.environ.get("CADENZA_PROPERTY_EXAMPLES", "400"))
FIELDS = ("prompt", "tempo", "key", "meter", "bars", "seed", "start_bar", "midi", "sample_rate")

words = st.sampled_from(["jazz", "disco", "piano", "drums", "bass", "in", "F#", "minor", "7/8", "bars",
                         "bpm", "slow", "no", "12", "999", "0", "-3", "waltz", "seconds", "♩=", "B♭", ""])
prompts = st.one_of(st.text(max_size=60), st.lists(words, max_size=12).map(" ".join),
                    st.text(min_size=1990, max_size=2100))
overrides = st.builds(
    pb.Overrides,
    tempo_bpm=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    key=st.none() | st.text(max_size=20) | st.sampled_from(["C", "F# minor", "Bb dorian", "H", "c major"]),
    meter=st.none() | st.text(max_size=8) | st.builds("{}/{}".format, st.integers(-2, 40), st.integers(-2, 70)),
    bars=st.none() | st.integers(-2**31, 2**31 - 1),
    seed=st.none() | st.integers(0, 2**64 - 1),
    start_bar=st.none() | st.integers(-2**31, 2**31 - 1),
)


midis = st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(lambda b: b"MThd\x00\x00\x00\x06" + b),
                  mutated_clips(max_edits=8))


def _check(error: grpc.RpcError) -> None:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{error.code()}: {error.details()}"
    assert any(field in error.details() for field in FIELDS), error.details()




def _run(call) -> None:
    try:
        call()
    except grpc.RpcError as error:
        _check(error)


def test_random_describe_and_generate_requests_get_ok_or_invalid_argument(engine):
    stub = pb_grpc.EngineStub(engine.channel)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(prompt=prompts, overrides=overrides, use_generate=st.booleans())
    def probe(prompt: str, overrides: pb.Overrides, use_generate: bool) -> None:
        if use_generate and overrides.bars <= 16:
            _run(lambda: list(stub.Generate(pb.GenerateRequest(prompt=prompt, overrides=overrides), timeout=30)))
        else:
            _run(lambda: stub.Describe(pb.DescribeRequest(prompt=prompt, overrides=overrides), timeout=30))

    probe()
    _assert_serving(engine)


def test_random_render_requests_get_invalid_argument(engine):
    stub = pb_grpc.EngineStub(engine.channel)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(midi=midis, sample_rate=st.integers(-2**31, 2**31 - 1))
    def probe(midi: bytes, sample_rate: int) -> None:
        _run(lambda: list(stub.Render(pb.RenderRequest(midi=midi, sample_rate=sample_rate), timeout=30)))

    probe()
    _assert_serving(engine)


def _assert_serving(engine) -> None:
    reply = health_pb2_grpc.HealthStub(engine.channel).Check(
        health_pb2.HealthCheckRequest(service="cadenza.v1.Engine"), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
