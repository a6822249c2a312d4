"""Fixtures for real resources: an engine process on a free loopback port, a JACK server."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.client import EngineClient, EngineProcess

ROOT = Path(__file__).resolve().parents[1]
# The development prompts: shared/eval/ beside the repository (where CI and every checkout have it),
# or the file $CADENZA_DEV_PROMPTS names.
DEV_PROMPTS = Path(os.environ.get("CADENZA_DEV_PROMPTS") or ROOT.parent / "shared" / "eval" / "dev_prompts.jsonl")

# A run started in the background by a shell without job control (`cmd &` in a script, nohup) starts
# with SIGINT ignored, and every process the tests start would inherit that: the tests that press
# Ctrl-C on a CLI (play, batch) need it delivered, as it is in a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Scratch folders this run makes (and removes when it ends); a folder the caller named is left alone.
_SCRATCH: list[str] = []


def _scratch(variable: str, prefix: str) -> None:
    if variable not in os.environ:
        os.environ[variable] = tempfile.mkdtemp(prefix=prefix)
        _SCRATCH.append(os.environ[variable])


# Sessions the tests' engines and CLI calls record go to a scratch folder, never the user's data folder.
_scratch("CADENZA_STATE", "cadenza-test-state-")
# The engine CLI calls without --engine find or start (bridge/local_engine.py) is announced in a
# runtime folder of the test run's own: never the user's engine, and stopped when the run ends.
_scratch("CADENZA_RUNTIME_DIR", "cadenza-test-runtime-")


@pytest.fixture(scope="session", autouse=True)
def _stop_background_engine() -> Iterator[None]:
    """Stop the engine a CLI call started in the background during the run, if any, then remove
    the run's scratch folders."""
    yield
    from engine.serving.local import stop_local_engine

    stop_local_engine()
    for folder in _SCRATCH:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """In CI (CI=true) a skip is a failure: .ci/run installs every tool the tests need, so a skip
    there means a broken CI image, not a missing optional tool."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where .ci/run installs what this test needs: {reason}"


@pytest.fixture(scope="session")
def engine_process() -> Iterator[EngineProcess]:
    """`cadenza serve --port 0` as a real subprocess, shared by the session's tests."""
    with EngineProcess() as process:
        yield process


@pytest.fixture()
def engine(engine_process: EngineProcess) -> Iterator[EngineClient]:
    """A client of the shared engine process, checked healthy."""
    with EngineClient(engine_process.target) as client:
        client.check()
        yield client


def realtime_permitted() -> bool:
    """Whether this process may schedule threads SCHED_FIFO (root with CAP_SYS_NICE, or a user
    with an rtprio limit, as Debian gives the audio group)."""
    return subprocess.run(["chrt", "-f", "10", "true"], capture_output=True).returncode == 0


def _running_jackd(synchronous: bool, realtime: bool = False) -> Iterator[str]:
    """A real JACK server with the dummy backend, under a name of its own.

    Sets JACK_DEFAULT_SERVER for this process and its children while it runs; yields the name.
    ``realtime``: `jackd -R` (its process threads and its clients' SCHED_FIFO), skipped where
    that is not permitted; otherwise `--no-realtime`.
    """
    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed (apt-get install jackd2); .ci/run installs it")
    if realtime and (shutil.which("chrt") is None or not realtime_permitted()):
        pytest.skip("real-time scheduling is not permitted here (run as root, or as a user with an rtprio "
                    "limit: Debian's audio group); CI runs as root")
    name = f"cadenza-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "JACK_NO_AUDIO_RESERVATION": "1"}
    # No client (jack_lsp included) may start a server of its own: JACK's registry holds eight
    # servers, and when it is full (stale entries of killed servers count) jackd refuses to start,
    # and an auto-started server with other settings would answer instead.
    os.environ["JACK_NO_START_SERVER"] = "1"
    mode = (["-S"] if synchronous else []) + (["-R"] if realtime else ["--no-realtime"])
    # Its messages go to a file: a pipe nobody reads fills up with an asynchronous server's xrun
    # reports, and jackd then blocks writing to it, stalling every client.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(["jackd", "-n", name, *mode, "-d", "dummy", "-r", "48000", "-p", "256"],
                               stdout=subprocess.DEVNULL, stderr=log, env=env)
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        probe = subprocess.run(["jack_lsp", "-s", name], capture_output=True, text=True)
        if probe.returncode == 0 and "system:" in probe.stdout:
            break
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"jackd exited: {log.read().decode(errors='replace')}")
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("jackd did not come up within 10 s")
    log.seek(0)
    if realtime and b"Cannot use real-time scheduling" in log.read():
        process.kill()
        pytest.fail("jackd -R could not use real-time scheduling although chrt could")
    try:
        yield name
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous


@pytest.fixture(scope="session")
def jack_server() -> Iterator[str]:
    """JACK in synchronous mode (-S): the server waits for every client each period.

    Asynchronous (see `jack_server_async`), a loaded machine makes it skip late clients' periods,
    losing their MIDI events (clock ticks), and the transport slips a period when the server
    itself is late.
    """
    yield from _running_jackd(synchronous=True)


@pytest.fixture(scope="module")
def jack_server_async() -> Iterator[str]:
    """Asynchronous JACK (no -S), real-time as jackd runs by default (`jackd -d dummy`), for one test module.

    Without real-time scheduling (`--no-realtime`) on a machine with more busy processes than
    cores, JACK never runs a late client in some periods (12-20% of them at load 6-9 here, see
    tests/benchmarks/bench_clock.py): what the clock master sent then is lost at the source and
    no follower can recover it. Module-scoped: it points JACK_DEFAULT_SERVER at itself while the
    module runs and restores it after.
    """
    yield from _running_jackd(synchronous=False, realtime=True)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `cadenza ARGS` as a user would, in a subprocess; returns the completed process."""
    return subprocess.run([sys.executable, "-m", "bridge.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def untrained_checkpoint(tmp_path_factory: pytest.TempPathFactory):
    """A checkpoint with random weights in the real vocabulary: decoding constraints must hold for it too."""
    import torch

    from engine.model.tokens import TOKENIZER_PARAMS, Vocab, build_tokenizer
    from engine.model.transformer import ModelConfig, MusicTransformer

    torch.manual_seed(0)
    vocab = Vocab(build_tokenizer())
    model = MusicTransformer(ModelConfig(vocab_size=vocab.size, block_size=64, n_layer=1, n_head=2, n_embd=32))
    path = tmp_path_factory.mktemp("untrained") / "untrained.pt"
    torch.save({"format": 1, "model_config": model.config.to_dict(), "tokenizer_params": TOKENIZER_PARAMS,
                "conditions": vocab.conditions, "record": {"data": "none: random weights"},
                "state_dict": {k: v.half() for k, v in model.state_dict().items() if k != "head.weight"}}, path)
    return path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (tests/postgres_cluster.py); yields its base URL.

    Skipped, saying why, where Debian's postgresql is not installed.
    """
    from tests.postgres_cluster import PostgresMissing, running_postgres

    try:
        with running_postgres() as url:
            yield url
    except PostgresMissing as missing:
        pytest.skip(str(missing))


@pytest.fixture()
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database in the throwaway cluster: ``postgresql://cadenza@127.0.0.1:PORT/NAME``."""
    from tests.postgres_cluster import create_database

    return create_database(postgres_server)
