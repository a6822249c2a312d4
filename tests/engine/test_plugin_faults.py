"""Issue 9, scenario 9 through the engine: a plugin that crashes or hangs in the render worker.

A real engine process (`cadenza serve`) is given a plugin folder holding real VST3 bundles
whose library segfaults, aborts or hangs when loaded (tests/plugin_bundles.py). The render that
loads one fails with a status naming the plugin; the engine stays SERVING and renders the next
request; a hang is cut off at the engine's render timeout. Plugins outside the configured
folders are refused before anything is loaded.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bridge.client import EngineClient, EngineProcess, RequestRejected
from tests.plugin_bundles import misbehaving_bundle
from tests.plugin_host.clip_scores import ROLES, make_score

RENDER_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def plugin_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plugins")
    misbehaving_bundle(folder, "Segv", crash=True, segfault=True)
    for sub, name, crash in (("more", "Abort", True), ("slow", "Hang", False)):
        (folder / sub).mkdir()
        misbehaving_bundle(folder / sub, name, crash=crash)
    return folder


@pytest.fixture(scope="module")
def faulty_engine(plugin_folder: Path) -> Iterator[tuple[EngineProcess, EngineClient]]:
    with EngineProcess("--plugin-folder", str(plugin_folder), "--render-timeout", str(RENDER_TIMEOUT)) as process:
        with EngineClient(process.target) as client:
            client.check()
            yield process, client


def _serving(client: EngineClient) -> int:
    reply = health_pb2_grpc.HealthStub(client.channel).Check(
        health_pb2.HealthCheckRequest(service="cadenza.v1.Engine"), timeout=10)
    return reply.status


def _midi(bars: int = 2) -> bytes:
    return bytes(make_score(bars=bars).dumps_midi())


def _render_fails(client: EngineClient, plugin: Path) -> tuple[RequestRejected, float]:
    started = time.monotonic()
    with pytest.raises(RequestRejected) as caught:
        client.render(_midi(), 48000, plugins={"bass": str(plugin)}, roles=ROLES)
    return caught.value, time.monotonic() - started


def _next_render_works(process: EngineProcess, client: EngineClient) -> None:
    assert process.process.poll() is None, "the engine process died"
    assert _serving(client) == health_pb2.HealthCheckResponse.SERVING
    audio = client.render(_midi(1), 48000, roles=ROLES)
    assert audio.mix.shape[0] > 0 and np.isfinite(audio.mix).all() and np.abs(audio.mix).max() > 0


@pytest.mark.parametrize("name, signal_number", [("Segv", 11), ("more/Abort", 6)])
def test_plugin_crash_through_the_engine(faulty_engine, plugin_folder, name, signal_number):
    process, client = faulty_engine
    bundle = plugin_folder / f"{name}.vst3"
    error, _ = _render_fails(client, bundle)
    print(f"{name}: {error.code.name}: {error}")
    # engine/serving/server.py maps a worker that died (RenderFailed) to INTERNAL, with the plugin named
    assert error.code == grpc.StatusCode.INTERNAL
    assert str(bundle) in str(error) and f"worker died (signal {signal_number})" in str(error)
    _next_render_works(process, client)


def test_plugin_hang_through_the_engine(faulty_engine, plugin_folder):
    process, client = faulty_engine
    bundle = plugin_folder / "slow" / "Hang.vst3"
    error, seconds = _render_fails(client, bundle)
    print(f"hang: {error.code.name} after {seconds:.1f} s: {error}")
    # engine/serving/server.py maps RenderTimeout to DEADLINE_EXCEEDED, with the plugin named
    assert error.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert str(bundle) in str(error) and f"render stopped after {RENDER_TIMEOUT:g} s" in str(error)
    _next_render_works(process, client)


def test_plugins_load_only_from_the_plugin_folders(faulty_engine, tmp_path):
    process, client = faulty_engine
    elsewhere = misbehaving_bundle(tmp_path, "Elsewhere", crash=True)
    error, _ = _render_fails(client, elsewhere)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "plugins[bass]" in str(error) and str(elsewhere) in str(error) and "--plugin-folder" in str(error)
    # a symlink inside the folder that points outside it is judged by where it leads
    link = Path(process.process.args[process.process.args.index("--plugin-folder") + 1]) / "Link.vst3"
    link.symlink_to(elsewhere)
    error, _ = _render_fails(client, link)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT and "plugins[bass]" in str(error)
    _next_render_works(process, client)


def test_the_cli_engine_loads_the_plugins_named_on_its_command_line(tmp_path):
    """`cadenza generate --plugin ROLE=PATH` without --engine starts an engine allowed that plugin's
    folder (the user named it): the plugin is loaded (here: it crashes, and the error names it)."""
    from tests.conftest import run_cli

    bundle = misbehaving_bundle(tmp_path, "CliCrash", crash=True)
    done = run_cli("generate", "4 bars of pop", "--out", str(tmp_path / "clip"), "--plugin", f"bass={bundle}",
                   "--seed", "1", "--quiet")
    assert done.returncode != 0
    assert "not in a plugin folder" not in done.stderr
    assert str(bundle) in done.stderr and "worker died (signal 6)" in done.stderr, done.stderr
    assert not (tmp_path / "clip" / "clip.mid").exists()
