"""The engine's gRPC client, and starting an engine process when none answers.

One client reaches one engine or many replicas: the target is any gRPC target (see
bridge/targets.py), balanced round_robin with health checking and retries of UNAVAILABLE.
Every logical call carries a fresh request id (metadata ``cadenza-request-id``); a retry of
that call, by gRPC or by this client, carries the same id, so the server can tell a retry
from a new request.
"""
from __future__ import annotations

import collections
import os
import secrets
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bridge.targets import (
    REQUEST_ID_KEY,
    STREAM_RETRY_ATTEMPTS,
    STREAM_RETRY_BACKOFF_SECONDS,
    STREAM_RETRY_SECONDS,
    channel_options,
    check_target,
)
from engine.errors import Unavailable, UsageError
from protos.cadenza.v1 import engine_pb2 as pb
from protos.cadenza.v1 import engine_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    import numpy as np

ProgressFn = Callable[[pb.Progress], None]
CONNECT_TIMEOUT_SECONDS = 5.0
ENGINE_START_TIMEOUT_SECONDS = 60.0


_RESTART = object()  # between two attempts of a server stream: what came before is void


class EngineUnavailable(Unavailable):
    """No engine answers at the target."""


class RequestRejected(UsageError):
    """The engine refused the request (INVALID_ARGUMENT and the like); the text says why."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code


@dataclass(kw_only=True)
class RenderReport:
    """What the engine says of a render beside its audio (StemsHeader), and clip.png when asked for."""

    sample_rate: int
    clip_frames: int = 0
    loudness_lufs: float = 0.0
    true_peak_dbtp: float = 0.0
    sources: dict[str, str] = field(default_factory=dict)  # part -> what played it
    treatments: list[str] = field(default_factory=list)    # genre processing applied
    picture: bytes | None = None  # clip.png, when the request asked for it (picture_title)

    @staticmethod
    def of(header: pb.StemsHeader) -> dict:
        """A header's report, as keyword arguments."""
        return {"sample_rate": header.sample_rate, "clip_frames": header.clip_frames,
                "loudness_lufs": header.loudness_lufs, "true_peak_dbtp": header.true_peak_dbtp,
                "sources": dict(header.sources), "treatments": list(header.treatments)}


@dataclass(kw_only=True)
class RenderedAudio(RenderReport):
    """Stems as they came over the wire: name -> (frames, channels) float32."""

    parts: dict[str, np.ndarray]
    mix: np.ndarray

    @property
    def frames(self) -> int:
        return self.mix.shape[0]


@dataclass(kw_only=True)
class RenderedFiles(RenderReport):
    """Stems and mix as files the engine encoded (RenderRequest.file_format): name -> the file's bytes, or
    the path of the file the engine handed over (FileHandoff) when it went to an ``on_file`` to move."""

    frames: int
    parts: list[str]                # stem names in order; ``files`` holds each, and "mix"
    files: dict[str, bytes | bytearray | Path]


@dataclass(frozen=True)
class FileHandoff:
    """What lets a client of the user's own engine take its files from the runtime folder: the secret from
    engine.json, and the folder the files must be in (engine/serving/local.py's Handoff)."""

    secret: str
    folder: Path

    def take(self, chunk: pb.FileChunk) -> Path:
        """The handed-over file ``chunk`` names, checked: a regular file of this user's, of the size the engine
        said, inside ``folder`` (an engine cannot point a client at any other file)."""
        path = Path(chunk.path)
        try:
            inside = path.is_absolute() and path.parent.resolve().is_relative_to(self.folder.resolve())
            info = path.lstat() if inside else None
        except OSError as error:
            raise RequestRejected(grpc.StatusCode.INTERNAL, f"the engine's {chunk.part} file {path} cannot be "
                                                            f"read: {error}") from error
        if info is None or not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_size != chunk.size:
            raise RequestRejected(grpc.StatusCode.INTERNAL, f"the engine handed over {path} for {chunk.part}: not a "
                                                            f"file of {chunk.size} bytes of yours in {self.folder}")
        return path


def _translate(error: grpc.RpcError, target: str) -> Exception:
    code = error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return EngineUnavailable(f"no engine answers at {target} ({error.details()})")
    return RequestRejected(code, error.details() or code.name)


def new_request_id() -> str:
    """A fresh id for one logical call: 32 random hex digits (uuid4's length; ``uuid`` costs a CLI call 20 ms
    of imports)."""
    return secrets.token_hex(16)


class EngineClient:
    """Describe, Generate and Render against an engine target: one engine or many replicas.

    ``target`` is any gRPC target of the forms bridge/targets.py accepts (BadTarget otherwise).
    A remote engine is reached over TLS (``tls_ca``: the PEM that signed its certificate,
    or the certificate itself) with its bearer ``token``.
    """

    def __init__(self, target: str, tls_ca: bytes | None = None, token: str | None = None,
                 handoff: FileHandoff | None = None) -> None:
        self.target = check_target(target)
        self.handoff = handoff  # the user's own engine: rendered files come through the runtime folder
        options = channel_options()
        if tls_ca is not None or token:
            credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca)
            if token:
                credentials = grpc.composite_channel_credentials(
                    credentials, grpc.access_token_call_credentials(token))
            self.channel = grpc.secure_channel(target, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.stub = pb_grpc.EngineStub(self.channel)

    def _stream(self, method: str, request, request_id: str | None) -> Iterator:
        """The events of a server-streaming call, started again (same request id) if it fails
        UNAVAILABLE part-way, e.g. its replica was killed.

        Each new attempt's events start from the beginning: a caller that collects them resets on
        the first event of an attempt (``_Restart`` is yielded between attempts). At most
        STREAM_RETRY_ATTEMPTS attempts within STREAM_RETRY_SECONDS.
        """
        metadata = ((REQUEST_ID_KEY, request_id or new_request_id()),)
        started = time.monotonic()
        for attempt in range(1, STREAM_RETRY_ATTEMPTS + 1):
            try:
                yield from getattr(self.stub, method)(request, metadata=metadata)
                return
            except grpc.RpcError as error:
                late = time.monotonic() - started > STREAM_RETRY_SECONDS
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == STREAM_RETRY_ATTEMPTS or late:
                    raise
            time.sleep(STREAM_RETRY_BACKOFF_SECONDS * attempt)
            yield _RESTART

    def _events(self, method: str, request, request_id: str | None, on_progress: ProgressFn | None) -> Iterator:
        """``_stream``'s events but progress, which goes to ``on_progress``; gRPC errors become RequestRejected /
        EngineUnavailable."""
        try:
            for event in self._stream(method, request, request_id):
                if event is not _RESTART and event.HasField("progress"):
                    if on_progress:
                        on_progress(event.progress)
                    continue
                yield event
        except grpc.RpcError as error:
            raise _translate(error, self.target) from None

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def check(self, timeout: float = CONNECT_TIMEOUT_SECONDS) -> None:
        """Raise EngineUnavailable unless the engine's health service says SERVING."""
        try:
            reply = health_pb2_grpc.HealthStub(self.channel).Check(
                health_pb2.HealthCheckRequest(service="cadenza.v1.Engine"), timeout=timeout,
                wait_for_ready=True)
        except grpc.RpcError:
            raise EngineUnavailable(
                f"no engine answers at {self.target} within {timeout:g} s "
                f"(start one with `cadenza serve`, or leave out --engine to start one for this call)"
            ) from None
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise EngineUnavailable(f"the engine at {self.target} is not serving")

    def describe(self, prompt: str, overrides: pb.Overrides | None = None) -> pb.MusicSpec:
        try:
            return self.stub.Describe(pb.DescribeRequest(prompt=prompt, overrides=overrides),
                                      metadata=((REQUEST_ID_KEY, new_request_id()),))
        except grpc.RpcError as error:
            raise _translate(error, self.target) from None

    def generate(self, prompt: str, overrides: pb.Overrides | None = None,
                 on_progress: ProgressFn | None = None, session: str = "", candidates: int = 0,
                 request_id: str | None = None, render_ahead: bool = False) -> pb.GenerateResult:
        """The resolved spec and SMF bytes; progress events go to ``on_progress``.

        With a ``session`` the clip is recorded as a take there (result.take is its id).
        ``request_id`` defaults to a fresh one; a retry sends the same. ``render_ahead``: the caller renders
        the result next with the options the spec decides, so the engine starts on each part as it is composed.
        """
        result = None
        request = pb.GenerateRequest(prompt=prompt, overrides=overrides, session=session, candidates=candidates,
                                     render_ahead=render_ahead)
        for event in self._events("Generate", request, request_id, on_progress):
            if event is _RESTART:
                result = None
            elif event.HasField("result"):
                result = event.result
        if result is None:
            raise RequestRejected(grpc.StatusCode.INTERNAL, "the engine sent no result")
        return result

    def call(self, method: str, request):
        """A unary co-creation RPC by name (Vary, Infill, Continue, Accompany, Rearrange, Verdict,
        GetTake, History, Taste); errors become RequestRejected / EngineUnavailable."""
        try:
            return getattr(self.stub, method)(request, metadata=((REQUEST_ID_KEY, new_request_id()),))
        except grpc.RpcError as error:
            raise _translate(error, self.target) from None

    def render(self, midi: bytes, sample_rate: int = 0, on_progress: ProgressFn | None = None,
               request_id: str | None = None, **options) -> RenderedAudio:
        """Stems for SMF bytes, reassembled from the engine's float32 chunks (``render_files`` for files).

        ``options`` are RenderRequest fields: tail, soundfont, plugins, presets, style, roles, bars,
        loudness_lufs, sounds, prompt, picture_title (clip.png then comes last, as ``picture``). A render
        restarted after a lost replica starts from empty buffers.
        """
        import numpy as np  # here, not at the top: a CLI call, which asks for files, needs no numpy

        header = None
        audio: RenderedAudio | None = None
        buffers: dict[str, np.ndarray] = {}
        missing = 0  # samples (frames x buffers) not received yet
        picture = None
        request = pb.RenderRequest(midi=midi, sample_rate=sample_rate, **options)
        for event in self._events("Render", request, request_id, on_progress):
            if event is _RESTART:
                header, audio, buffers, picture = None, None, {}, None
            elif event.HasField("header"):
                header = event.header
                for name in [*header.parts, "mix"]:
                    buffers[name] = np.zeros((header.frames, header.channels), dtype=np.float32)
                missing = header.frames * len(buffers)
                if missing == 0:
                    audio = _assembled(header, buffers)
            elif event.HasField("chunk"):
                chunk = event.chunk
                block = np.frombuffer(chunk.samples, dtype="<f4").reshape(-1, header.channels)
                buffers[chunk.part][chunk.start_frame:chunk.start_frame + len(block)] = block
                missing -= len(block)
                if missing == 0 and audio is None:
                    audio = _assembled(header, buffers)
            elif event.HasField("picture_png"):
                picture = event.picture_png
        if header is None:
            raise RequestRejected(grpc.StatusCode.INTERNAL, "the engine sent no audio")
        if audio is None:
            raise RequestRejected(grpc.StatusCode.INTERNAL, "the engine's audio ended before its last sample")
        audio.picture = picture or None
        return audio

    def render_files(self, midi: bytes, file_format: str, time_reference: int = 0, sample_rate: int = 0,
                     on_progress: ProgressFn | None = None, request_id: str | None = None,
                     on_file: Callable[[str, bytes | bytearray | Path], None] | None = None,
                     **options) -> RenderedFiles:
        """Stems and mix encoded by the engine as ``file_format`` files ("wav": 24-bit Broadcast WAV placed at
        ``time_reference`` samples; "flac"), so the caller writes bytes and needs no audio library.

        ``options`` are RenderRequest fields as for ``render``. ``on_file`` is called with (part or "mix",
        bytes) as each file's last byte is in, the stems first, while clip.png may still be drawn. From the
        user's own engine (``handoff``) it gets the path of the whole file instead, to move into place.
        """
        header = None
        files: dict[str, bytes | bytearray | Path] = {}
        arriving: dict[str, bytearray] = {}
        picture = None
        request = pb.RenderRequest(midi=midi, sample_rate=sample_rate, file_format=file_format,
                                   time_reference=time_reference, handoff=self.handoff.secret if self.handoff else "",
                                   **options)
        for event in self._events("Render", request, request_id, on_progress):
            if event is _RESTART:
                header, files, arriving, picture = None, {}, {}, None
            elif event.HasField("header"):
                header = event.header
            elif event.HasField("file") and event.file.path:
                if self.handoff is None:
                    raise RequestRejected(grpc.StatusCode.INTERNAL, "the engine sent a file's path, not its bytes")
                path = self.handoff.take(event.file)
                if on_file is not None:
                    files[event.file.part] = path
                    on_file(event.file.part, path)
                else:
                    files[event.file.part] = path.read_bytes()
                    path.unlink()
            elif event.HasField("file"):
                chunk = event.file
                data = arriving.setdefault(chunk.part, bytearray())
                if chunk.offset != len(data):
                    raise RequestRejected(grpc.StatusCode.INTERNAL, f"the engine's {chunk.part} file jumped "
                                                                    f"from byte {len(data)} to {chunk.offset}")
                data += chunk.data
                if len(data) == chunk.size:
                    files[chunk.part] = arriving.pop(chunk.part)
                    if on_file is not None:
                        on_file(chunk.part, files[chunk.part])
            elif event.HasField("picture_png"):
                picture = event.picture_png
        if header is None:
            raise RequestRejected(grpc.StatusCode.INTERNAL, "the engine sent no audio")
        missing = [name for name in [*header.parts, "mix"] if name not in files]
        if missing:
            raise RequestRejected(grpc.StatusCode.INTERNAL, f"the engine's files ended without {', '.join(missing)}")
        return RenderedFiles(**RenderReport.of(header), frames=header.frames, parts=list(header.parts), files=files,
                             picture=picture or None)


def _assembled(header: pb.StemsHeader, buffers: dict) -> RenderedAudio:
    """The stems and mix of a render whose last sample has arrived."""
    parts = {name: audio for name, audio in buffers.items() if name != "mix"}
    return RenderedAudio(**RenderReport.of(header), parts=parts, mix=buffers["mix"])


LOG_TAIL_LINES = 200


class EngineProcess:
    """An engine started for one CLI call: `cadenza serve --port 0` as a child process."""

    def __init__(self, *serve_args: str) -> None:
        # stdin is a pipe only this process holds: when it exits, however it exits, the engine
        # reads end-of-file and stops (--exit-with-stdin), rather than living on unowned.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "serve", "--port", "0", "--no-announce", "--exit-with-stdin",
             *serve_args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.process.stdout.readline()
        if "listening on" not in line:
            error = self.process.stderr.read() if self.process.poll() is not None else ""
            self.close()
            raise EngineUnavailable(f"could not start an engine: {line.strip() or error.strip()}")
        self.target = line.rsplit(" ", 1)[1].strip()
        # The engine logs a line per request on stderr: keep reading it (its last lines kept for a
        # diagnosis) so a full pipe never blocks the engine.
        self.log_tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        threading.Thread(target=self.log_tail.extend, args=(self.process.stderr,), name="engine-stderr",
                         daemon=True).start()

    def __enter__(self) -> EngineProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
