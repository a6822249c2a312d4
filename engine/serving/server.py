"""The Engine gRPC service: a thin servicer over understand, compose, the co-creation operations and render.

Its RPCs: Describe, Generate, Render; Vary, Infill, Continue, Accompany, Rearrange; Verdict,
GetTake, History, Taste (engine/serving/cocreation.py does the session work). Errors become
statuses in one place (``_serving``), by the status each error carries (engine/errors.py).
``serve()`` owns the server's life: it binds loopback by default, reports health,
and on SIGTERM/SIGINT stops taking requests and lets in-flight ones finish.
"""
from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import replace
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from engine.compose.pipeline import compose
from engine.config import (
    AUDIO_CHUNK_FRAMES,
    DEFAULT_SAMPLE_RATE,
    ENGINE_QUEUE,
    ENGINE_WORKERS,
    ERROR_DETAILS_MAX_CHARS,
    FILE_CHUNK_BYTES,
    GRPC_MAX_RECEIVE_BYTES,
    GRPC_MAX_SEND_BYTES,
    RENDER_MAX_SECONDS,
    RENDER_MEMORY_BASE_BYTES,
    RENDER_MEMORY_BUFFERS,
    RENDER_MEMORY_BUFFERS_PER_PART,
    RENDER_MEMORY_MAX_BYTES,
    SAMPLE_RATES,
    SHUTDOWN_ABANDON_SECONDS,
    SHUTDOWN_GRACE_SECONDS,
    STREAM_WRITE_TIMEOUT_SECONDS,
)
from engine.errors import Busy, CadenzaError, Cancelled, SpecError, Unavailable, stop_when
from engine.music.midi import score_to_smf, smf_to_score
from engine.serving.admission import Admission
from engine.serving.convert import overrides_from_pb, spec_to_pb
from engine.serving.observability import (
    EngineMetrics,
    ObservingInterceptor,
    configure_logging,
    start_metrics_server,
    timed_warm_up,
)
from engine.serving.request_ids import sent_request_id
from engine.serving.security import (
    InsecureBind,
    TokenInterceptor,
    is_loopback,
    load_or_create_token,
    server_credentials,
)
from engine.serving.streams import HealthGuard, WriteDeadline
from engine.understand.prompt import understand
from protos.cadenza.v1 import engine_pb2 as pb
from protos.cadenza.v1 import engine_pb2_grpc as pb_grpc

log = logging.getLogger("cadenza.engine")
SERVICE_NAME = "cadenza.v1.Engine"
DEFAULT_HOST = "localhost"  # 127.0.0.1 and ::1
STATUS_FLUSH_SECONDS = 2.0


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> None:
    """End the call with ``code``; details past ERROR_DETAILS_MAX_CHARS are cut (a refusal quoting a
    100,000-character field must still fit gRPC's header limit)."""
    if len(details) > ERROR_DETAILS_MAX_CHARS:
        details = details[:ERROR_DETAILS_MAX_CHARS] + f"... ({len(details)} characters in all)"
    context.abort(code, details)


def _progress(stage: str, fraction: float, message: str = "") -> pb.Progress:
    return pb.Progress(stage=stage, fraction=fraction, message=message)


def _draw_picture(drawn: dict, score, stems, title: str, bars: int | None) -> None:
    """clip.png of a render into ``drawn["png"]`` (or the exception into ``drawn["error"]``), for a thread."""
    try:
        from plugin_host.picture import stems_png

        drawn["png"] = stems_png(score, stems, title, bars)
    except Exception as error:  # reported by the request's thread
        drawn["error"] = error


def _render_ahead(spec) -> Callable:
    """For compose: each part, as soon as it is finished, to the idle render worker, which renders it into
    its cache while the rest of the clip is composed. The render a client asks next with the options the
    spec decides (a CLI call asks one at once) finds those parts done; any other render misses and does
    all the work, as without."""
    from plugin_host.render import render_ahead

    roles = {part.name: str(part.role) for part in spec.parts}

    def ahead(score, index: int) -> None:
        try:
            render_ahead(score, [index], DEFAULT_SAMPLE_RATE, tail="cut", style=spec.style, roles=roles,
                         bars=spec.bars, prompt=spec.prompt)
        except Exception as error:  # only time is lost: the render does the part itself
            log.warning("rendering part %d ahead failed: %s", index, error)
    return ahead


def _check_render_length(score, bars: int | None) -> None:
    from plugin_host.render import clip_seconds

    seconds = clip_seconds(score, bars)
    if seconds > RENDER_MAX_SECONDS:
        raise SpecError("midi", f"the clip lasts {seconds:.0f} s; at most {RENDER_MAX_SECONDS:.0f} s are rendered")


def render_memory_bytes(seconds: float, parts: int, sample_rate: int) -> int:
    """What a render of ``parts`` parts lasting ``seconds`` (its tail included) at ``sample_rate`` is
    estimated to need at its peak, from the measured RENDER_MEMORY_BUFFERS* model."""
    frames = int(seconds * sample_rate)
    buffers = RENDER_MEMORY_BUFFERS + RENDER_MEMORY_BUFFERS_PER_PART * max(1, parts)
    return RENDER_MEMORY_BASE_BYTES + 8 * frames * buffers


def _check_render_memory(score, bars: int | None, sample_rate: int) -> None:
    """SpecError naming ``midi`` when length x parts x rate would pass RENDER_MEMORY_MAX_BYTES."""
    from plugin_host.config import TAIL_MAX_SECONDS
    from plugin_host.render import clip_seconds

    seconds = clip_seconds(score, bars) + TAIL_MAX_SECONDS
    parts = len(score.tracks)
    needed = render_memory_bytes(seconds, parts, sample_rate)
    if needed > RENDER_MEMORY_MAX_BYTES:
        plural = "" if parts == 1 else "s"
        raise SpecError("midi", f"rendering {parts} part{plural} of {seconds:.0f} s at {sample_rate} Hz would take "
                                f"about {needed / 1024**3:.1f} GiB; at most {RENDER_MEMORY_MAX_BYTES / 1024**3:.1f} "
                                "GiB (render fewer parts, a shorter clip or at a lower sample rate)")


ROLE_NAMES = ("melody", "chords", "keys", "pad", "bass", "drums")


def _check_plugin_keys(score, options: dict) -> None:
    """Every --plugin/--preset key names a role or a part of this clip (a typo is not ignored)."""
    parts = [t.name for t in score.tracks if t.name]
    roles = sorted(set(options["roles"].values())) or list(ROLE_NAMES)
    for field in ("plugins", "presets"):
        for key in options[field]:
            if key not in parts and key not in roles:
                raise SpecError(f"{field}[{key}]", f"{key!r} is neither a role of this clip ({', '.join(roles)}) "
                                                   f"nor one of its parts ({', '.join(parts) or 'none named'})")


def _header(stems) -> pb.StemsHeader:
    return pb.StemsHeader(sample_rate=stems.sample_rate, channels=stems.channels, frames=stems.frames,
                          parts=list(stems.parts), clip_frames=stems.clip_frames or stems.frames,
                          loudness_lufs=stems.loudness_lufs or 0.0, true_peak_dbtp=stems.true_peak_dbtp or 0.0,
                          sources=stems.sources, treatments=stems.treatments)


def _float_chunks(name: str, audio: np.ndarray, frames: int) -> Iterator[pb.RenderEvent]:
    for start in range(0, max(1, frames), AUDIO_CHUNK_FRAMES):
        block = np.ascontiguousarray(audio[start:start + AUDIO_CHUNK_FRAMES], dtype="<f4")
        yield pb.RenderEvent(chunk=pb.AudioChunk(part=name, start_frame=start, samples=block.tobytes()))


def _file_chunks(name: str, data: bytes) -> Iterator[pb.RenderEvent]:
    view = memoryview(data)
    for offset in range(0, max(1, len(data)), FILE_CHUNK_BYTES):
        yield pb.RenderEvent(file=pb.FileChunk(part=name, offset=offset, size=len(data),
                                               data=bytes(view[offset:offset + FILE_CHUNK_BYTES])))


def _check_sample_rate(rate: int) -> int:
    if rate == 0:
        return DEFAULT_SAMPLE_RATE
    if rate not in SAMPLE_RATES:
        raise SpecError("sample_rate", f"must be one of {', '.join(map(str, SAMPLE_RATES))} Hz, got {rate}")
    return rate


def _opt(message, name: str):
    """A proto3 optional field's value, or None when unset."""
    return getattr(message, name) if message.HasField(name) else None


def client_request_id(context: grpc.ServicerContext) -> str | None:
    """The caller's request id (metadata ``cadenza-request-id``), or None when it sent none.

    Take-making RPCs with an id already recorded in the session return that take instead of
    making another, so a retried request (gRPC's retry policy, or the client's own) is safe.
    """
    return sent_request_id(context.invocation_metadata())


def take_to_pb(take, with_midi: bool = True) -> pb.TakeResult:
    """A stored take as a TakeResult (History leaves the MIDI out)."""
    import json

    return pb.TakeResult(take=take.id, parent=take.parent or "", operation=take.operation,
                         spec=pb.MusicSpec.FromString(take.spec), midi=take.midi if with_midi else b"",
                         verdict=take.verdict, reason=take.reason, rating=take.rating, created=take.created,
                         params_json=json.dumps(take.params), seed=take.seed, model_version=take.model_version,
                         session=take.session)


def _base_spec(prompt: str):
    """The spec a prompt asks for; with no prompt (optional for Continue and Accompany) the defaults."""
    from engine.config import DEFAULTS

    if prompt.strip():
        return understand(prompt)
    return replace(understand(DEFAULTS.style), prompt="")


def history_reply(takes) -> pb.HistoryReply:
    """The takes without MIDI, oldest first; when they would not fit one reply, the newest that do,
    with ``omitted`` saying how many older ones were left out."""
    budget = GRPC_MAX_SEND_BYTES - 64 * 1024
    kept: list[pb.TakeResult] = []
    for take in reversed(takes):
        entry = take_to_pb(take, with_midi=False)
        budget -= entry.ByteSize() + 8
        if budget < 0:
            log.warning("history: %d older takes left out of the reply (it would pass %d bytes)",
                        len(takes) - len(kept), GRPC_MAX_SEND_BYTES)
            break
        kept.append(entry)
    return pb.HistoryReply(takes=kept[::-1], omitted=len(takes) - len(kept))


class EngineServicer(pb_grpc.EngineServicer):
    """Answers Describe, Generate and Render.

    Bad requests get INVALID_ARGUMENT naming the field; requests beyond the admission
    limits get RESOURCE_EXHAUSTED; a caller that cancels or passes its deadline stops the work.
    """

    def __init__(self, admission: Admission, plugin_folders: tuple[Path, ...] = (),
                 render_timeout: float | None = None, cocreation=None,
                 stopping: threading.Event | None = None) -> None:
        from plugin_host.config import RENDER_TIMEOUT_SECONDS

        self.admission = admission
        self.stopping = stopping or threading.Event()  # set when the engine gives up in-flight work
        self.plugin_folders = plugin_folders  # plugins load only from inside these
        self.render_timeout = render_timeout or RENDER_TIMEOUT_SECONDS
        self.cocreation = cocreation  # engine.serving.cocreation.CoCreation: sessions and takes
        self.handoff = None  # engine.serving.local.Handoff once announced: files left for the user's own clients

    def _co(self):
        if self.cocreation is None:  # an engine built without a store (tests of other RPCs)
            raise SpecError("session", "this engine keeps no sessions (start it with `cadenza serve`)")
        return self.cocreation

    @contextlib.contextmanager
    def _serving(self, context: grpc.ServicerContext) -> Iterator[Callable[[], bool]]:
        """Admit the request and turn domain errors into statuses; yields a should-stop check."""
        gone = threading.Event()
        context.add_callback(gone.set)  # runs when the RPC ends: done, cancelled or past its deadline

        def should_stop() -> bool:
            return gone.is_set() or self.stopping.is_set()

        try:
            # stop_when: the work below (decoding, arranging) polls should_stop through check_stop
            with self.admission.slot(still_wanted=lambda: not should_stop()), stop_when(should_stop):
                yield should_stop
        except CadenzaError as error:  # the one mapping: each error carries its status (engine/errors.py)
            if isinstance(error, Unavailable):  # e.g. the shared database is out of reach: another replica may answer
                log.warning("unavailable: %s", error)
            elif isinstance(error, Cancelled):
                log.info("request stopped: %s", error)
            elif error.status == "RESOURCE_EXHAUSTED" and not isinstance(error, Busy):  # e.g. the store's disk is full
                log.error("%s", error)
            message = f"stopped: {error}" if isinstance(error, Cancelled) else str(error)
            _abort(context, getattr(grpc.StatusCode, error.status), message)

    def Describe(self, request: pb.DescribeRequest, context: grpc.ServicerContext) -> pb.MusicSpec:
        with self._serving(context):
            return spec_to_pb(understand(request.prompt, overrides_from_pb(request.overrides)))

    def Generate(self, request: pb.GenerateRequest, context: grpc.ServicerContext) -> Iterator[pb.GenerateEvent]:
        with self._serving(context) as should_stop:
            yield pb.GenerateEvent(progress=_progress("understand", 0.0, "reading the prompt"))
            spec = understand(request.prompt, overrides_from_pb(request.overrides))
            yield pb.GenerateEvent(progress=_progress("compose", 0.3, f"composing {spec.bars} bars"))
            ahead = _render_ahead(spec) if request.render_ahead else None
            if request.session:
                take, spec = self._co().generate(request.session, spec,
                                                 lambda s: compose(s, should_stop=should_stop, on_part=ahead),
                                                 request.candidates, request_id=client_request_id(context))
                yield pb.GenerateEvent(progress=_progress("compose", 1.0, "done"))
                yield pb.GenerateEvent(result=pb.GenerateResult(spec=spec_to_pb(spec), midi=take.midi, take=take.id))
                return
            midi = score_to_smf(compose(spec, should_stop=should_stop, on_part=ahead))
            yield pb.GenerateEvent(progress=_progress("compose", 1.0, "done"))
            yield pb.GenerateEvent(result=pb.GenerateResult(spec=spec_to_pb(spec), midi=midi))

    # -- co-creation: thin wrappers over engine.serving.cocreation ------------------------------------
    def Vary(self, request: pb.VaryRequest, context: grpc.ServicerContext) -> pb.TakeResult:
        with self._serving(context):
            return take_to_pb(self._co().vary(request.session, request.take, list(request.parts),
                                              _opt(request, "amount"), _opt(request, "seed"), request.candidates,
                                              request_id=client_request_id(context)))

    def Infill(self, request: pb.InfillRequest, context: grpc.ServicerContext) -> pb.TakeResult:
        with self._serving(context):
            return take_to_pb(self._co().infill(request.session, request.take, request.part, request.first_bar,
                                                request.last_bar, _opt(request, "seed"),
                                                request_id=client_request_id(context)))

    def Continue(self, request: pb.ContinueRequest, context: grpc.ServicerContext) -> pb.TakeResult:
        with self._serving(context):
            if not request.take and not request.midi:
                raise SpecError("take", "name a take to continue, or send a MIDI file")
            return take_to_pb(self._co().extend(request.session, request.take, request.midi, request.bars,
                                                _opt(request, "seed"), lambda: _base_spec(request.prompt),
                                                request.played, request.new_bars_only,
                                                request_id=client_request_id(context)))

    def Accompany(self, request: pb.AccompanyRequest, context: grpc.ServicerContext) -> pb.TakeResult:
        with self._serving(context):
            from engine.music.midi import smf_to_score as _check_midi

            _check_midi(request.midi)  # a bad file is refused before the prompt is read
            base = _base_spec(request.prompt)
            return take_to_pb(self._co().accompany(request.session, request.midi, list(request.add), base,
                                                   _opt(request, "seed"), request_id=client_request_id(context)))

    def Rearrange(self, request: pb.RearrangeRequest, context: grpc.ServicerContext) -> pb.TakeResult:
        with self._serving(context):
            return take_to_pb(self._co().rearrange(request.session, request.take, _opt(request, "key"),
                                                   _opt(request, "tempo_bpm"), dict(request.instruments),
                                                   _opt(request, "style"), request_id=client_request_id(context)))

    def Verdict(self, request: pb.VerdictRequest, context: grpc.ServicerContext) -> pb.TakeResult:
        with self._serving(context):
            return take_to_pb(self._co().verdict(request.session, request.take, request.verdict, request.reason,
                                                 request.rating, request_id=client_request_id(context)),
                              with_midi=False)

    def GetTake(self, request: pb.TakeRequest, context: grpc.ServicerContext) -> pb.TakeResult:
        with self._serving(context):
            return take_to_pb(self._co().find(request.session, request.take, request.any_session))

    def History(self, request: pb.HistoryRequest, context: grpc.ServicerContext) -> pb.HistoryReply:
        with self._serving(context):
            return history_reply(self._co().history(request.session))

    def Taste(self, request: pb.TasteRequest, context: grpc.ServicerContext) -> pb.TasteReply:
        from engine.sessions.taste import FEATURES

        with self._serving(context):
            self._co().history(request.session)  # NOT_FOUND for an unknown session
            taste = self._co().taste(request.session)
            total = taste.weights + taste.steer
            return pb.TasteReply(lines=taste.describe(), examples=taste.examples,
                                 weights={name: float(w) for name, w in zip(FEATURES, total, strict=True)})

    def Render(self, request: pb.RenderRequest, context: grpc.ServicerContext) -> Iterator[pb.RenderEvent]:
        from plugin_host.folders import check_plugin_path, check_preset_path, check_soundfont_path
        from plugin_host.render import FileRequest, render

        with self._serving(context) as should_stop:
            sample_rate = _check_sample_rate(request.sample_rate)
            files = FileRequest(request.file_format, request.time_reference, request.picture_title).check() \
                if request.file_format else None
            score = smf_to_score(request.midi)
            options = {"tail": request.tail or "cut", "soundfont": request.soundfont or None,
                       "plugins": dict(request.plugins), "presets": dict(request.presets),
                       "style": request.style or None, "roles": dict(request.roles), "bars": request.bars or None,
                       "sounds": dict(request.sounds), "prompt": request.prompt}
            if request.HasField("loudness_lufs"):
                options["loudness_lufs"] = request.loudness_lufs
            _check_plugin_keys(score, options)
            # The paths checked are the paths loaded: resolved here, once (a symlink swapped after
            # the check cannot lead the worker out of the plugin folders).
            options["plugins"] = {role: check_plugin_path(path, self.plugin_folders, f"plugins[{role}]")
                                  for role, path in options["plugins"].items()}
            options["presets"] = {key: check_preset_path(preset, options["plugins"].get(key), self.plugin_folders,
                                                         f"presets[{key}]")
                                  for key, preset in options["presets"].items()}
            if options["soundfont"]:  # read only from a SoundFont or plugin folder, by the path checked
                options["soundfont"] = check_soundfont_path(options["soundfont"], self.plugin_folders)
            _check_render_length(score, options["bars"])
            _check_render_memory(score, options["bars"], sample_rate)
            if files is not None and self.handoff is not None and self.handoff.accepts(request.handoff):
                self.handoff.sweep()  # the worker leaves each file there and sends its path
                files = replace(files, folder=str(self.handoff.folder))
            events: queue.Queue = queue.Queue()
            outcome: dict = {}

            def work() -> None:
                try:
                    outcome["stems"] = render(
                        score, sample_rate, progress=events.put, should_stop=should_stop, timeout=self.render_timeout,
                        on_buffer=lambda stems, name: events.put(("buffer", stems, name, None)),
                        files=files, on_file=lambda delivered, name, data: events.put(("file", delivered, name, data)),
                        **options)
                except Exception as error:  # reported to the client below, not lost in a thread
                    outcome["error"] = error
                events.put(None)

            threading.Thread(target=work, name="render", daemon=True).start()
            yield pb.RenderEvent(progress=_progress("render", 0.0, f"rendering {len(score.tracks)} parts"))
            # Each buffer (or file, which the worker encodes) is sent as it comes from the worker, the header first.
            header_sent = False
            drawn: dict = {}
            drawing = None
            while (event := events.get()) is not None:
                if not isinstance(event, tuple):
                    yield pb.RenderEvent(progress=_progress("render", 0.9 * event))
                    continue
                kind, rendered, name, data = event
                if not header_sent:
                    header_sent = True
                    yield pb.RenderEvent(header=_header(rendered))
                if kind == "file":
                    if isinstance(data, Path):  # left in the handoff folder for the user's own client
                        yield pb.RenderEvent(file=pb.FileChunk(part=name, size=data.stat().st_size, path=str(data)))
                    else:
                        yield from _file_chunks(name, data)
                    continue
                if name == "mix" and request.picture_title:  # drawn while the mix travels; sent after it
                    drawing = threading.Thread(target=_draw_picture, name="picture", daemon=True,
                                               args=(drawn, score, rendered, request.picture_title, options["bars"]))
                    drawing.start()
                yield from _float_chunks(name, rendered.mix if name == "mix" else rendered.parts[name], rendered.frames)
            error = outcome.get("error")
            if isinstance(error, CadenzaError):
                raise error  # its own status via _serving: bad options, a broken plugin, a timeout...
            if error is not None:
                log.error("render failed", exc_info=error)
                _abort(context, grpc.StatusCode.INTERNAL, f"render failed: {error}")
            stems = outcome["stems"]
            if files is not None and stems.picture is not None:
                yield pb.RenderEvent(picture_png=stems.picture)
            if drawing is not None:
                drawing.join()
                if "error" in drawn:
                    log.error("drawing clip.png failed", exc_info=drawn["error"])
                    _abort(context, grpc.StatusCode.INTERNAL, f"drawing clip.png failed: {drawn['error']}")
                yield pb.RenderEvent(picture_png=drawn["png"])
            reused = f"; {len(stems.reused)} of {len(stems.parts)} parts rendered before" if stems.reused else ""
            yield pb.RenderEvent(progress=_progress("render", 1.0, f"done{reused}"))


class Engine:
    """A running engine: the gRPC server, its admission control and its health.

    On loopback it is open to local clients. Any other address needs TLS (``tls`` = cert and
    key PEM paths) and a bearer ``token`` checked on every RPC; without both it refuses to start.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = 0, workers: int = ENGINE_WORKERS,
                 queue_size: int = ENGINE_QUEUE, tls: tuple[Path, Path] | None = None,
                 token: str | None = None, plugin_folders: tuple[Path, ...] = (),
                 render_timeout: float | None = None, state_dir: Path | None = None,
                 store: str | None = None, metrics_port: int | None = None,
                 write_timeout: float = STREAM_WRITE_TIMEOUT_SECONDS) -> None:
        if not is_loopback(host) and (tls is None or not token):
            raise InsecureBind(f"refusing to listen on {host} without TLS and a token: pass --tls-cert and "
                               "--tls-key (the token is made for you), or listen on 127.0.0.1")
        # Threads for the admitted requests, the waiting ones, the refused ones and health checks.
        threads = workers + queue_size + 8
        self.admission = Admission(workers, queue_size)
        # First, so it also sees the token interceptor's refusals; metrics live in a registry per engine.
        self.metrics = EngineMetrics(self.admission)
        from engine.serving.local import Activity

        # Outermost first: health on its own threads with bounded watches, the write deadline on
        # streamed replies, activity (for an idle timeout), then observing (which also sees the
        # token's refusals) and the token.
        self.health_guard = HealthGuard()
        self.write_deadline = WriteDeadline(write_timeout)
        self.stopping = threading.Event()
        self.activity = Activity(lambda: self.admission.in_flight > 0)
        interceptors = [self.health_guard, self.write_deadline, self.activity, ObservingInterceptor(self.metrics),
                        *([TokenInterceptor(token)] if token else [])]
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rpc"),
                                  interceptors=interceptors,
                                  options=[("grpc.max_receive_message_length", GRPC_MAX_RECEIVE_BYTES),
                                           ("grpc.max_send_message_length", GRPC_MAX_SEND_BYTES)])
        from engine.serving.cocreation import CoCreation
        from engine.sessions.store import open_store

        # --store (a URL or folder) names the sessions database; else the state folder's SQLite file.
        self.store = open_store(store) if store else open_store(state_dir)
        self.servicer = EngineServicer(self.admission, plugin_folders, render_timeout, CoCreation(self.store),
                                       self.stopping)
        pb_grpc.add_EngineServicer_to_server(self.servicer, self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self._bind(host, port, server_credentials(*tls) if tls else None)
        self.server.start()
        self.metrics_server = (start_metrics_server(self.metrics.registry, host, metrics_port)
                               if metrics_port is not None else None)
        self._set_health(health_pb2.HealthCheckResponse.SERVING)

    def _bind(self, host: str, port: int, credentials: grpc.ServerCredentials | None) -> int:
        """Listen on ``host`` (localhost = 127.0.0.1 and ::1, on one port); returns the port."""
        def add(address: str) -> int:
            if credentials:
                return self.server.add_secure_port(address, credentials)
            return self.server.add_insecure_port(address)

        first = "127.0.0.1" if host == "localhost" else host
        bound = add(f"{first}:{port}" if ":" not in first else f"[{first.strip('[]')}]:{port}")
        if bound == 0:
            raise OSError(f"cannot listen on {host}:{port} (in use, or not an address of this machine)")
        if host == "localhost" and add(f"[::1]:{bound}") == 0:
            log.warning("IPv6 loopback [::1]:%d is not available; listening on 127.0.0.1 only", bound)
        return bound

    def _set_health(self, status: int) -> None:
        for service in ("", SERVICE_NAME):
            self.health.set(service, status)

    def shutdown(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> bool:
        """NOT_SERVING at once, new requests UNAVAILABLE, in-flight ones get ``grace`` seconds; then
        they are told to stop (their work polls it) and get SHUTDOWN_ABANDON_SECONDS more.

        Returns False when a request was still running after that (the caller should exit anyway)."""
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        self.admission.close()
        idle = self.admission.wait_idle(grace)
        if not idle:
            log.warning("requests still running after %.0f s; cancelling them", grace)
            self.stopping.set()
            idle = self.admission.wait_idle(SHUTDOWN_ABANDON_SECONDS)
            if not idle:
                log.warning("%d requests did not stop within %.0f s; abandoning them",
                            self.admission.active + self.admission.waiting, SHUTDOWN_ABANDON_SECONDS)
        # A finished handler's last message and status may still be on their way: let them go.
        self.server.stop(STATUS_FLUSH_SECONDS).wait()
        self.write_deadline.close()
        self.health_guard.close()
        if self.metrics_server is not None:
            self.metrics_server.close()
        if idle:  # an abandoned request may still be using the store
            self.store.close()
        if self.servicer.handoff is not None:
            self.servicer.handoff.close()
        return idle


def _announce(engine: Engine, host: str, store: str | None, state_dir: Path | None,
              plugin_folders: tuple[Path, ...], idle_timeout: float | None) -> bool:
    """Tell local clients where this engine is (loopback engines only), with the secret that gets them their
    files through the runtime folder (engine.servicer.handoff); False if not announced."""
    import secrets

    from engine.serving.local import Handoff, LocalEngine, announce, handoff_folder, runtime_dir
    from engine.sessions.store import store_name

    if not is_loopback(host):
        return False
    shown = "127.0.0.1" if host == "localhost" else host.strip("[]")
    target = f"[{shown}]:{engine.port}" if ":" in shown else f"{shown}:{engine.port}"
    try:
        secret = secrets.token_urlsafe(24)
        engine.servicer.handoff = Handoff(secret, handoff_folder(runtime_dir()))
        announce(LocalEngine(target=target, pid=os.getpid(), store=store_name(store, state_dir),
                             plugin_folders=tuple(str(Path(f).resolve()) for f in plugin_folders),
                             idle_timeout=idle_timeout, handoff=secret))
    except OSError as error:  # a read-only or foreign runtime folder: serve all the same, unannounced
        log.warning("not announced to local clients: %s", error)
        return False
    return True


def serve(host: str = DEFAULT_HOST, port: int = 0, workers: int = ENGINE_WORKERS,
          queue_size: int = ENGINE_QUEUE, tls: tuple[Path, Path] | None = None,
          plugin_folders: tuple[Path, ...] | None = None, render_timeout: float | None = None,
          state_dir: Path | None = None, store: str | None = None, metrics_port: int | None = None,
          log_format: str = "json", log_level: str = "info", idle_timeout: float | None = None,
          announce: bool = True, write_timeout: float = STREAM_WRITE_TIMEOUT_SECONDS,
          exit_with_stdin: bool = False) -> int:
    """Run the engine until SIGTERM/SIGINT; prints one line with the address it listens on.

    On loopback (unless ``announce`` is off) it announces itself in the user's runtime folder
    (engine/serving/local.py), so CLI calls without ``--engine`` use it; with ``idle_timeout`` it
    stops after that many seconds without a call.

    With ``metrics_port`` (0 = a free one) Prometheus metrics are served at
    http://HOST:PORT/metrics, announced on a second line. Logs go to stderr, one JSON object a
    line (``log_format="text"`` for plain lines), each with the request id it served.

    Plugins load only from ``plugin_folders`` (default: the standard VST3/AU folders);
    a render taking longer than ``render_timeout`` seconds is stopped. Sessions live in ``store``
    (a ``postgresql://`` URL shared by replicas, ``sqlite:///FILE``, or a folder), else in
    ``state_dir``'s SQLite file.

    On a signal, health turns NOT_SERVING, new requests get UNAVAILABLE, and in-flight ones
    have SHUTDOWN_GRACE_SECONDS to finish, then are stopped; the process ends even if one does
    not (the exit code is 0 either way). ``exit_with_stdin``: stop when stdin closes: the CLI
    that started this engine for itself holds its other end, so when that CLI dies (even by
    SIGKILL) its engine ends too, at once (nobody is left to wait for the work in flight).
    """
    from engine.understand.prompt import warm_up

    configure_logging(log_format, log_level)

    def warm() -> None:
        from plugin_host.worker import prestart  # the renderer's imports take a second or two

        timed_warm_up(warm_up)
        prestart()  # then a render worker with its imports done, so the first render is a warm one
        from engine.model import drums, generator, parts  # and the models (torch), for the first Generate

        generator.load()
        parts.load()
        drums.load_default()

    # The text model loads in the background once the engine is SERVING (it would slow the start down
    # by competing for the interpreter), so SERVING does not wait for it; the first Describe may.
    warming = threading.Thread(target=warm, name="warm-up", daemon=True)
    token = load_or_create_token() if not is_loopback(host) else None
    if plugin_folders is None:
        from plugin_host.folders import plugin_folders as standard

        plugin_folders = standard()
    engine = Engine(host, port, workers, queue_size, tls=tls, token=token, plugin_folders=plugin_folders,
                    render_timeout=render_timeout, state_dir=state_dir, store=store, metrics_port=metrics_port,
                    write_timeout=write_timeout)
    warming.start()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    parent_gone = threading.Event()
    if exit_with_stdin:
        from engine.serving.lifetime import stop_with_parent

        stop_with_parent(lambda: (parent_gone.set(), stopping.set()))
    # Announced before the line below, so whoever waits for that line finds the announcement too.
    announced = announce and _announce(engine, host, store, state_dir, plugin_folders, idle_timeout)
    shown = "127.0.0.1" if host == "localhost" else host
    print(f"cadenza engine listening on {shown}:{engine.port}", flush=True)
    if engine.metrics_server is not None:  # after the line EngineProcess waits for, which must come first
        metrics = engine.metrics_server
        print(f"cadenza metrics on http://{metrics.host}:{metrics.port}/metrics", flush=True)
        log.info("metrics on http://%s:%d/metrics", metrics.host, metrics.port)
    try:
        while not stopping.wait(0.1):  # a timed wait lets the signal handler run promptly
            if idle_timeout is not None and engine.activity.idle_seconds() > idle_timeout:
                log.info("no request for %.0f s: stopping", idle_timeout)
                break
    finally:
        if announced:  # first, so no new client picks an engine that is going away
            from engine.serving.local import withdraw

            withdraw(os.getpid())
    finished = engine.shutdown(0.0 if parent_gone.is_set() else SHUTDOWN_GRACE_SECONDS)
    with contextlib.suppress(OSError):  # stderr may be a pipe to a parent that is gone
        print("cadenza engine stopped", file=sys.stderr, flush=True)
    # A request that ignored the stop holds a thread the interpreter would wait for; with the
    # parent gone nobody waits for anything: end now either way. Stopped while still warming up
    # (the text model loading, a spare render worker starting: up to a minute on a busy machine),
    # end now too: the interpreter's exit would tear torch's threads down under the loading model
    # and abort (exit -6), and waiting for it made a SIGTERM soon after start take that long.
    if not finished or parent_gone.is_set() or warming.is_alive():
        from plugin_host.worker import stop_all

        stop_all()
        with contextlib.suppress(OSError):
            logging.shutdown()
            sys.stdout.flush()
        os._exit(0)
    return 0
