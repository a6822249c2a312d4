"""`cadenza`: the command line. A thin client of the engine; it starts one when none answers.

Heavy imports (grpc stubs, numpy, audio) happen inside the commands, so `--help` is instant.
"""
from __future__ import annotations

import argparse
import json
import sys
import tomllib
from importlib import resources
from pathlib import Path

from bridge import arguments
from bridge.cli_common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    Engine,
    check_out_folder,
    default_session,
    pairs,
    print_clip_summary,
    train_checkpoint,
)
from bridge.clip_content import spec_json
from engine import config
from engine.errors import EXIT_INTERRUPTED, CadenzaError
from plugin_host import config as host_config


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tempo", type=float, metavar="BPM", help="tempo in quarter notes per minute (20-400)")
    parser.add_argument("--key", help='key, e.g. "F# minor", "Bb", "D dorian"')
    parser.add_argument("--meter", help="time signature, e.g. 7/4")
    parser.add_argument("--bars", type=arguments.bars, metavar="N", help="length in bars (1-256)")
    parser.add_argument("--seed", type=arguments.seed, metavar="S",
                        help="random seed: the same spec and seed give the same clip")
    parser.add_argument("--quantize", action="store_true", default=None,
                        help="every note, drums and pitched parts, exactly on the grid (default: the learned "
                             "micro-timing of the drum model and the performance model)")
    parser.add_argument("--chords", metavar="PROGRESSION",
                        help='chords, one per bar, repeated: symbols "Am7 Dm7 G7 Cmaj7", Roman numerals '
                             '"I V vi IV", or a MIDI file whose chord track is read bar by bar')
    parser.add_argument("--engine", metavar="TARGET", help="a running engine or replicas, any gRPC target: HOST:PORT, "
                        "ipv4:A:P,B:P, dns:///NAME:PORT (default: your running engine, else one started "
                        "in the background)")
    parser.add_argument("--tls-ca", metavar="PEM", help="certificate authority of a remote engine (TLS)")
    parser.add_argument("--token-file", metavar="FILE",
                        help="bearer token of a remote engine (default with --tls-ca: $CADENZA_TOKEN, "
                             "else the token in your Cadenza config folder)")


def _chords(text: str | None) -> str | None:
    """``--chords``: a progression as written, or a MIDI file's chord track read bar by bar."""
    if text is None:
        return None
    path = Path(text).expanduser()
    if not (text.lower().endswith((".mid", ".midi")) or path.is_file()):
        return text
    from symusic import Score

    from engine.errors import SpecError
    from engine.music.chords import chords_of_score

    try:
        score = Score.from_midi(path.read_bytes())
    except (OSError, RuntimeError, ValueError) as error:
        raise SpecError("chords", f"cannot read {path} as a MIDI chord track: {error}") from None
    return " ".join(chords_of_score(score))


def _overrides(args: argparse.Namespace):
    from protos.cadenza.v1 import engine_pb2 as pb

    fields = {"tempo_bpm": args.tempo, "key": args.key, "meter": args.meter, "bars": args.bars,
              "seed": args.seed, "start_bar": getattr(args, "at", None), "chords": _chords(args.chords),
              "quantize": args.quantize}
    return pb.Overrides(**{k: v for k, v in fields.items() if v is not None})


def _print_spec(data: dict) -> None:
    sources = data["sources"]
    key, meter = data["key"], data["meter"]
    rows = [
        ("tempo", f"{data['tempo_bpm']:g} BPM", sources.get("tempo_bpm")),
        ("key", f"{key['tonic']} {key['mode']}", sources.get("key")),
        ("meter", f"{meter['numerator']}/{meter['denominator']}", sources.get("meter")),
        ("bars", str(data["bars"]), sources.get("bars")),
        ("start bar", str(data["start_bar"]), sources.get("start_bar")),
        ("style", data["style"], sources.get("style")),
        ("mood", data["mood"], sources.get("mood")),
        ("energy", f"{data.get('energy', 0.5):.2f}", sources.get("energy")),
        ("dynamics", data["arc"], sources.get("arc")),
        ("swing", "yes" if data["swing"] else "no", sources.get("swing")),
        ("quantize", "yes" if data.get("quantize") else "no", sources.get("quantize")),
        ("seed", str(data["seed"]), sources.get("seed")),
    ]
    if data.get("chords"):
        rows.append(("chords", " ".join(data["chords"]), sources.get("chords")))
    for name, value, source in rows:
        print(f"  {name:<10} {value:<22} ({source})")
    print(f"  {'parts':<10} ({sources.get('parts')})")
    for part in data["parts"]:
        print(f"    {part['name']:<18} {part['role']:<8} {part['instrument']}")
    for note in data.get("notes", []):
        print(f"  note: {note}")


def cmd_serve(args: argparse.Namespace) -> int:
    if args.stop:
        from engine.serving.local import stop_local_engine

        stopped = stop_local_engine()
        print(f"stopped the engine at {stopped.target} (pid {stopped.pid})" if stopped else
              "no engine is running for you (nothing announced in the runtime folder)")
        return 0
    from engine.serving.security import InsecureBind
    from engine.serving.server import serve
    from engine.sessions.store import StoreUnavailable, StoreURLError

    if args.idle_timeout is not None and args.idle_timeout <= 0:
        print(f"cadenza: error: --idle-timeout must be above 0 seconds, got {args.idle_timeout:g}", file=sys.stderr)
        return EXIT_USAGE
    if args.store and args.state:
        print("cadenza: error: --store and --state both name where sessions live; give one", file=sys.stderr)
        return EXIT_USAGE
    if bool(args.tls_cert) != bool(args.tls_key):
        print("cadenza: error: --tls-cert and --tls-key go together", file=sys.stderr)
        return EXIT_USAGE
    tls = (Path(args.tls_cert), Path(args.tls_key)) if args.tls_cert else None
    try:
        from plugin_host.folders import plugin_folders

        return serve(args.host, args.port, workers=args.workers, queue_size=args.queue, tls=tls,
                     plugin_folders=plugin_folders(args.plugin_folder), render_timeout=args.render_timeout,
                     state_dir=Path(args.state) if args.state else None, store=args.store,
                     metrics_port=args.metrics_port, log_format=args.log_format, log_level=args.log_level,
                     idle_timeout=args.idle_timeout, announce=not args.no_announce,
                     **({"write_timeout": args.write_timeout} if args.write_timeout else {}),
                     exit_with_stdin=args.exit_with_stdin)
    except InsecureBind as error:
        print(f"cadenza: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (StoreURLError, StoreUnavailable) as error:
        print(f"cadenza: error: {error}", file=sys.stderr)
        return EXIT_USAGE if isinstance(error, StoreURLError) else 1


def cmd_describe(args: argparse.Namespace) -> int:
    overrides = _overrides(args)
    with Engine(args) as client:
        data = spec_json(client.describe(args.prompt, overrides))
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_spec(data)
    return 0


class _NoBar:
    """What `cmd_generate` does with a progress bar, when none is shown."""

    n = 0

    def set_description_str(self, text: str) -> None:
        pass

    def refresh(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc) -> None:
        pass


def _percent_bar(quiet: bool):
    """A tqdm bar on a terminal (tqdm is imported only then: a scripted call, a DAW's, skips its import)."""
    if quiet or not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=100, unit="%", desc="starting", bar_format="{desc:<10} {bar} {percentage:3.0f}%")


def cmd_generate(args: argparse.Namespace) -> int:
    from bridge.clip_files import check_free
    from bridge.clip_folder import write_take_folder

    out = Path(args.out)
    check_out_folder(out)
    check_free(out, args.force)
    cli_render_options = _render_options(args)
    overrides = _overrides(args)
    session = args.session or default_session()
    with Engine(args) as client, _percent_bar(args.quiet) as bar:
        def progress(weight_from: float, weight: float):
            def update(event) -> None:
                bar.set_description_str(event.stage)
                bar.n = round(100 * (weight_from + weight * event.fraction))
                bar.refresh()
            return update

        # Stems wanted with the options the spec decides: the engine renders each part as it is composed.
        ahead = (not args.midi_only and args.sample_rate in (0, host_config.DEFAULT_SAMPLE_RATE)
                 and cli_render_options.get("tail") == host_config.DEFAULT_TAIL
                 and not any(cli_render_options.get(name) for name in ("plugins", "presets", "soundfont", "sounds")))
        result = client.generate(args.prompt, overrides, progress(0.0, 0.3), session=session, render_ahead=ahead)
        clip = write_take_folder(client, out, result, sample_rate=args.sample_rate, options=cli_render_options,
                                 fmt=args.format, overwrite=args.force, midi_only=args.midi_only,
                                 on_progress=progress(0.3, 0.65))
        bar.n = 100
        bar.set_description_str("done")
        bar.refresh()
    if args.json:
        print(json.dumps({"take": result.take, "parent": None, "session": session, **clip.as_json()}))
        return 0
    if args.quiet:
        return 0
    spec = clip.spec
    print(f"take {result.take} in session {session}")
    print(f"{spec['bars']} bars of {spec['style']} in {spec['key']['tonic']} {spec['key']['mode']}, "
          f"{spec['meter']['numerator']}/{spec['meter']['denominator']} at {spec['tempo_bpm']:g} BPM, "
          f"seed {spec['seed']}: {', '.join(p['name'] for p in spec['parts'])}")
    print_clip_summary(args, clip)
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bridge.batch import read_prompts, run_batch

    prompts = Path(args.prompts)
    if not prompts.is_file():
        print(f"cadenza: error: no prompts file {prompts} (JSONL: one {{\"prompt\": ...}} object a line)",
              file=sys.stderr)
        return EXIT_USAGE
    if not 1 <= args.concurrency <= 64:
        print(f"cadenza: error: --concurrency must be 1-64, got {args.concurrency}", file=sys.stderr)
        return EXIT_USAGE
    items = read_prompts(prompts, bars=args.bars)
    with Engine(args) as client, tqdm(total=len(items), unit="clip", disable=True if args.quiet else None) as bar:
        def done(outcome) -> None:
            bar.update(1)
            if outcome.status == "failed":
                bar.write(f"  failed: {outcome.error}", file=sys.stderr)

        summary = run_batch(client, items, Path(args.out), args.concurrency, args.sample_rate,
                            session=args.session or "", prompts=str(prompts), engine=args.engine or "local",
                            on_done=done)
    totals = summary.totals()
    if not args.quiet:
        print(f"{totals['done']} made, {totals['skipped']} already whole, {totals['failed']} failed "
              f"in {totals['wall_seconds']:.1f} s ({totals['clips_per_second']:.3f} clips/s); "
              f"{Path(args.out) / 'summary.json'}")
    return EXIT_FAILURE if totals["failed"] else 0


def cmd_place(args: argparse.Namespace) -> int:
    from bridge.timeline.place import place

    placement = place(Path(args.dir), Path(args.into), args.at)
    print(f"placed {args.dir} at bar {placement.at_bar} (beat {placement.beat:g}, {placement.seconds:.6f} s) "
          f"in {placement.kind}: {placement.project}")
    for path in placement.media:
        print(f"  {path}")
    for note in placement.notes:
        print(f"  note: {note}")
    return 0


def cmd_notes(args: argparse.Namespace) -> int:
    from bridge.timeline.clip import read_clip
    from bridge.timeline.notes import note_lines

    print("\n".join(note_lines(read_clip(Path(args.dir)))))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.evaluation.evaluate import evaluate, load_prompts, write_report

    try:
        cases = load_prompts(Path(args.prompts))
    except ValueError as error:
        print(f"cadenza: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.seeds < 1:
        print(f"cadenza: error: --seeds must be at least 1, got {args.seeds}", file=sys.stderr)
        return EXIT_USAGE
    # One step per prompt, and a last one for measuring the reference set (about a minute).
    with tqdm(total=len(cases) + 1, unit="step", desc="prompts", disable=args.quiet) as bar:
        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)
            if done == total - 1:
                bar.set_description_str("reference set")

        result = evaluate(cases, seeds=args.seeds, reference_path=args.reference, progress=progress)
    report = write_report(result, Path(args.out), Path(args.prompts).name)
    if not args.quiet:
        for name, (ok, total) in result.accuracy().items():
            print(f"  {name:<14} {ok:>4}/{total:<4} {ok / total:.3f}")
        print(f"  report: {report}")
    return 0


def _render_options(args: argparse.Namespace) -> dict:
    """RenderRequest fields from the command line (checked before any work starts)."""
    options = {"tail": args.tail, "plugins": pairs(args.plugin, "--plugin"),
               "presets": pairs(args.preset, "--preset")}
    if args.soundfont:
        options["soundfont"] = str(Path(args.soundfont).expanduser().resolve())
    sounds = {}
    for value in args.sound or []:
        key, sep, source = value.partition("=")
        if not sep or not key or not source:
            print(f"cadenza: error: --sound takes PART=SOURCE (a role like bass, or a part name; a source like "
                  f"synth:reese, bank or gm), got {value!r}", file=sys.stderr)
            raise SystemExit(EXIT_USAGE)
        sounds[key] = source
    if sounds:
        options["sounds"] = sounds
    if args.lufs is not None:
        options["loudness_lufs"] = args.lufs
    return options


def cmd_play(args: argparse.Namespace) -> int:
    from plugin_host.play import PlaybackError, play

    try:
        path, seconds = play(Path(args.dir), args.device, args.stem)
    except KeyboardInterrupt:
        if not args.quiet:
            print("stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except PlaybackError as error:
        print(f"cadenza: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    if not args.quiet:
        print(f"played {path} ({seconds:.2f} s)")
    return 0


def _add_midi_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--midi-api", choices=arguments.MIDI_APIS, default="jack",
                        help="jack: frame-exact JACK client (default); jack-rtmidi, alsa, coremidi: python-rtmidi")
    parser.add_argument("--in", dest="connect_in", metavar="PORT",
                        help="connect 'Cadenza In' to this existing port (name or part of it)")
    parser.add_argument("--meter", default="4/4", help="the DAW's time signature: MIDI clock does not carry it")
    _add_sync_option(parser)


def _add_sync_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sync", choices=arguments.SYNC_SOURCES, default="midi-clock",
                        help="midi-clock: follow MIDI beat clock on 'Cadenza In' (default); link: join the "
                             "Ableton Link session on the network (tempo, beat, phase; bars of --meter); "
                             "link-start-stop: the same, running only while the session plays (Link's "
                             "start/stop sync), bar 1 where it started")


def _meter(text: str):
    from engine.errors import SpecError
    from engine.music.theory import parse_meter

    try:
        return parse_meter(text, "--meter")
    except SpecError as error:
        print(f"cadenza: error: {error}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def cmd_clock(args: argparse.Namespace) -> int:
    from bridge.console import run_clock

    return run_clock(_meter(args.meter), args.midi_api, args.connect_in, args.json, args.beats, args.seconds,
                     sync=args.sync)


def cmd_bridge(args: argparse.Namespace) -> int:
    from bridge.console import run_bridge

    return run_bridge(_meter(args.meter), args.midi_api, args.connect_in, args.connect_out, args.engine,
                      session_name=args.session or "", state=args.state, sync=args.sync)


def cmd_jam(args: argparse.Namespace) -> int:
    from bridge.jam import parse_trigger, run_jam

    try:
        keep = parse_trigger(args.keep_note, args.keep_cc, "keep")
        reject = parse_trigger(args.reject_note, args.reject_cc, "reject")
        if not 1 <= args.phrase <= 64:
            raise ValueError(f"--phrase must be 1-64 bars, got {args.phrase}")
        if keep is not None and keep == reject:
            raise ValueError("--keep-* and --reject-* must be different notes or CCs")
    except ValueError as error:
        print(f"cadenza: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return run_jam(args.prompt, args.phrase, _meter(args.meter), args.session or default_session(), args.engine,
                   keep, reject, args.midi_api, args.jam_in, args.connect_out, args.phrases, args.state,
                   sync=args.sync)


def cmd_train(args: argparse.Namespace) -> int:
    if getattr(args, "from_feedback", None):
        from bridge.cocreate_cli import train_from_feedback

        return train_from_feedback(args)
    if args.drums:
        return _train_drums(args)
    if getattr(args, "parts", False):
        return _train_parts(args)
    if getattr(args, "perform", False):
        return _train_perform(args)
    return train_checkpoint(args.data, args.out, args.steps, args.seed, args.init, force=args.force)


def _train_drums(args: argparse.Namespace) -> int:
    """`cadenza train --drums --data GROOVE_DIR`: the drum model on the Groove MIDI Dataset."""
    from engine.training.drums import DrumTrainConfig, run
    from engine.training.groove import GrooveError

    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"cadenza: error: {out} exists; pass --force to replace it", file=sys.stderr)
        return EXIT_FAILURE
    if args.data is None:
        print("cadenza: error: --drums needs --data DIR, a Groove MIDI Dataset folder (info.csv and drummerN/)",
              file=sys.stderr)
        return EXIT_USAGE
    config = DrumTrainConfig()
    if args.steps is not None:
        config.steps = args.steps
    if args.seed is not None:
        config.seed = args.seed
    if args.genre_balance is not None:
        if not 0.0 <= args.genre_balance <= 1.0:
            print(f"cadenza: error: --genre-balance must be 0-1 (1 draws every window alike, 0 every genre alike), "
                  f"got {args.genre_balance}", file=sys.stderr)
            return EXIT_USAGE
        config.genre_balance = args.genre_balance
    try:
        record = run(Path(args.data), out, config)
    except GrooveError as error:
        print(f"cadenza: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    val = record["validation"]
    print(f"wrote {out}: {record['parameters']:,} parameters, {config.steps} steps in "
          f"{record['train_seconds'] / 60:.1f} min, validation loss {val['total']:.3f} "
          f"(hit {val['hit']:.4f} per cell, velocity {val['velocity']:.3f}, offset {val['offset']:.3f} nats per hit)")
    return 0


def _pop909_paths(args: argparse.Namespace) -> tuple[Path, Path] | int:
    """(POP909 folder, output path) of a `cadenza train` on POP909, or the exit code of a bad one."""
    from engine.training import pop909

    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"cadenza: error: {out} exists; pass --force to replace it", file=sys.stderr)
        return EXIT_FAILURE
    data = Path(args.data) if args.data else pop909.DEFAULT_DIR
    try:
        pop909.song_dirs(data)
    except (pop909.Pop909Error, OSError) as error:
        print(f"cadenza: error: --data: {error} (fetch {pop909.SOURCE} and pass its folder)", file=sys.stderr)
        return EXIT_USAGE
    return data, out


def _train_parts(args: argparse.Namespace) -> int:
    """`cadenza train --parts`: the part model on a local POP909 copy (engine/training/train_parts.py)."""
    from engine.training.train_parts import PartTrainConfig, train

    checked = _pop909_paths(args)
    if isinstance(checked, int):
        return checked
    data, out = checked
    defaults = PartTrainConfig()
    config = PartTrainConfig(steps=args.steps or defaults.steps, seed=args.seed if args.seed is not None
                             else defaults.seed, minutes=args.minutes or defaults.minutes)
    record = train(data, out, config, progress=lambda message: print(message, flush=True))
    print(f"wrote {out}: {record['parameters']:,} parameters, {record['steps']} steps in "
          f"{record['train_seconds'] / 60:.1f} min, validation loss {record['validation_loss']['all']:.3f}")
    return 0


def _train_perform(args: argparse.Namespace) -> int:
    """`cadenza train --perform`: the performance model on a local POP909 copy (engine/training/train_perform.py)."""
    from engine.training.train_perform import PerformTrainConfig, train

    checked = _pop909_paths(args)
    if isinstance(checked, int):
        return checked
    data, out = checked
    defaults = PerformTrainConfig()
    config = PerformTrainConfig(seed=args.seed if args.seed is not None else defaults.seed)
    record = train(data, out, config, command=f"cadenza train --perform --data {data} --out {out}")
    print(f"wrote {out}: {record['steps']} steps in {record['minutes']:.1f} min, validation loss "
          + ", ".join(f"{role} velocity {v['velocity']:.3f} offset {v['offset']:.3f} length {v['length']:.3f}"
                      for role, v in record["validation"].items()))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for a mistyped command or choice."""

    def error(self, message: str):
        import difflib
        import re

        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            options = [o.strip(" '") for o in choice.group(2).split(",")]
            close = difflib.get_close_matches(choice.group(1), options, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        super().error(message)


def version() -> str:
    """The installed package's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("cadenza")
    except PackageNotFoundError:
        return "unknown (not installed)"


class _Version(argparse.Action):
    """--version, looked up only when asked for (importlib.metadata costs a tenth of a second per call)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the version and exit", **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"cadenza {version()}")
        parser.exit()


def _synth_voice_names() -> str:
    """The synth voices plugin_host/data/sounds.toml defines, read without loading the synthesiser."""
    data = tomllib.loads(resources.files("plugin_host.data").joinpath("sounds.toml").read_text())
    return ", ".join(data.get("voice", {}))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cadenza", description="Music from a sentence, into your DAW session.")
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    parser.set_defaults(_commands=commands.choices)

    serve = commands.add_parser("serve", help="run the engine (gRPC, loopback only by default)")
    serve.add_argument("--host", default="localhost",
                       help="address to listen on (default localhost: 127.0.0.1 and ::1; others need TLS)")
    serve.add_argument("--tls-cert", metavar="PEM", help="TLS certificate, needed to listen beyond loopback")
    serve.add_argument("--tls-key", metavar="PEM", help="TLS private key for --tls-cert")
    serve.add_argument("--port", type=int, default=config.DEFAULT_PORT,
                       help="port (0 = any free port; default %(default)s)")
    serve.add_argument("--workers", type=int, default=config.ENGINE_WORKERS,
                       help="requests worked on at once (default %(default)s)")
    serve.add_argument("--queue", type=int, default=config.ENGINE_QUEUE,
                       help="requests that may wait for a worker (default %(default)s)")
    serve.add_argument("--plugin-folder", action="append", default=[], metavar="DIR",
                       help="also load plugins, and the presets and SoundFonts requests name, from DIR "
                            "(repeatable; the standard VST3 and SoundFont folders always count)")
    serve.add_argument("--render-timeout", type=float, metavar="SECONDS",
                       help="stop a render (e.g. a hanging plugin) after this long "
                            f"(default {host_config.RENDER_TIMEOUT_SECONDS:g})")
    serve.add_argument("--write-timeout", type=float, metavar="SECONDS",
                       help="end a streamed call whose client takes no reply message for this long "
                            f"(default {config.STREAM_WRITE_TIMEOUT_SECONDS:g})")
    serve.add_argument("--exit-with-stdin", action="store_true",
                       help="stop when stdin closes (an engine a CLI starts for itself ends with that CLI)")
    serve.add_argument("--state", metavar="DIR", help="folder for the sessions database (default: $CADENZA_STATE, "
                                                      "else your user data folder)")
    serve.add_argument("--store", metavar="URL", help="sessions database: postgresql://USER@HOST:PORT/DB (shared by "
                                                      "replicas), sqlite:///FILE or a folder (default: --state's)")
    serve.add_argument("--metrics-port", type=int, metavar="P",
                       help="serve Prometheus metrics at http://HOST:P/metrics (0 = any free port; default: off)")
    serve.add_argument("--log-format", choices=("json", "text"), default="json",
                       help="stderr logs: one JSON object a line with the request id (default), or text")
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info",
                       help="least severe log level written (default info: a line per request)")
    serve.add_argument("--idle-timeout", type=float, metavar="SECONDS",
                       help="stop after this long without a request (default: run until stopped)")
    serve.add_argument("--stop", action="store_true", help="stop your running engine (the one CLI calls use)")
    serve.add_argument("--no-announce", action="store_true",
                       help="do not offer this engine to CLI calls without --engine (a private engine)")
    serve.set_defaults(func=cmd_serve)

    describe = commands.add_parser("describe", help="show what the engine understands from a prompt")
    describe.add_argument("prompt")
    describe.add_argument("--json", action="store_true", help="print the spec as JSON")
    _add_overrides(describe)
    describe.set_defaults(func=cmd_describe)

    generate = commands.add_parser("generate", help="make a clip: MIDI, stems, mix and spec")
    generate.add_argument("prompt")
    generate.add_argument("--out", required=True, metavar="DIR", help="folder for the clip")
    generate.add_argument("--at", type=int, metavar="BAR",
                          help=f"project bar the clip is made for (default {config.DEFAULTS.start_bar})")
    generate.add_argument("--sample-rate", type=int, default=0, metavar="HZ",
                          help=f"default {config.DEFAULT_SAMPLE_RATE}")
    generate.add_argument("--force", action="store_true", help="replace a clip already in DIR")
    generate.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    generate.add_argument("--tail", choices=host_config.TAIL_POLICIES, default=host_config.DEFAULT_TAIL,
                          help="past the clip's end: cut (fade at the bar line), ring (let it decay), "
                               "loop (wrap the tail onto the start); default cut")
    generate.add_argument("--format", choices=("wav", "flac"), default="wav",
                          help="stems as 24-bit Broadcast WAV (default) or FLAC")
    generate.add_argument("--soundfont", metavar="PATH",
                          help="an .sf2/.sf3 SoundFont for the sampled parts (default: the best General MIDI bank "
                               "found: FluidR3 GM, MuseScore General, else pretty_midi's TimGM6mb)")
    generate.add_argument("--sound", action="append", metavar="PART=SOURCE",
                          help=f"the source for a role or part: synth:NAME ({_synth_voice_names()}), bank (the best "
                               "General MIDI SoundFont found) or gm (pretty_midi's); default: by style and prompt "
                               "words (plugin_host/data/sounds.toml). Repeatable")
    generate.add_argument("--plugin", action="append", metavar="ROLE=PATH",
                          help="a VST3/AU for a role or part: an instrument replaces the SoundFont, an effect "
                               "joins the chain (repeatable)")
    generate.add_argument("--preset", action="append", metavar="ROLE=FILE",
                          help="a JSON parameter preset for that role's plugin, or the name of one shipped in "
                               "plugin_host/data/presets/PLUGIN/ (repeatable)")
    generate.add_argument("--lufs", type=float, metavar="LUFS",
                          help=f"mix loudness target (default {host_config.TARGET_LUFS:g})")
    generate.add_argument("--session", metavar="NAME", help="record the clip as a take in this session "
                                                            "(default: the current folder's name)")
    generate.add_argument("--json", action="store_true",
                          help="print JSON: take, parent, session and every file written (midi, mix, stems, spec)")
    generate.add_argument("--midi-only", action="store_true", help="write clip.mid and spec.json only (no audio)")
    generate.add_argument("--state", metavar="DIR", help="where a started engine keeps sessions")
    _add_overrides(generate)
    generate.set_defaults(func=cmd_generate)

    batch = commands.add_parser("batch", help="many clips from a JSONL prompts file, one folder per line "
                                              "(resumable)")
    batch.add_argument("prompts", metavar="PROMPTS.jsonl",
                       help='one JSON object a line: "prompt", optional "id", "tempo", "key", "meter", "bars", "seed"')
    batch.add_argument("--out", required=True, metavar="DIR", help="folder for the clip folders and summary.json")
    batch.add_argument("--engine", metavar="TARGET",
                       help="a gRPC target: HOST:PORT, ipv4:A:P,B:P, dns:///NAME:PORT (default: start one engine)")
    batch.add_argument("--concurrency", type=int, default=2, metavar="N", help="requests at once (default 2)")
    batch.add_argument("--bars", type=arguments.bars, metavar="N",
                       help="make every clip N bars long (overrides the lines)")
    batch.add_argument("--sample-rate", type=int, default=0, metavar="HZ", help=f"default {config.DEFAULT_SAMPLE_RATE}")
    batch.add_argument("--session", metavar="NAME", help="record every clip as a take in this session (default: none)")
    batch.add_argument("--quiet", action="store_true", help="no progress bar or summary line")
    batch.add_argument("--tls-ca", metavar="PEM", help="certificate authority of remote engines (TLS)")
    batch.add_argument("--token-file", metavar="FILE", help="bearer token of remote engines (as for generate)")
    batch.add_argument("--state", metavar="DIR", help="where a started engine keeps sessions")
    batch.set_defaults(func=cmd_batch)

    place = commands.add_parser("place", help="put a clip folder into a DAW project at a bar")
    place.add_argument("dir", metavar="DIR", help="a clip folder written by `cadenza generate --out`")
    place.add_argument("--into", required=True, metavar="PROJECT",
                       help="a .dawproject, .RPP, .mid, .ardour file or Ardour session folder; an existing "
                            "project is never overwritten: the result is written beside it")
    place.add_argument("--at", type=int, metavar="BAR", help="project bar (default: the bar the clip was made for)")
    place.set_defaults(func=cmd_place)

    notes = commands.add_parser("notes", help="print a clip folder's tempo, parts, notes and stems as tab-separated "
                                              "lines (for DAW scripts)")
    notes.add_argument("dir", metavar="DIR", help="a clip folder written by `cadenza generate --out`")
    notes.set_defaults(func=cmd_notes)

    evaluate = commands.add_parser("eval", help="generate for a prompts file and report control accuracy, "
                                                "musicality, diversity, latency")
    evaluate.add_argument("--prompts", required=True, metavar="FILE",
                          help="JSONL: {\"prompt\": ..., \"expect\": {...}}")
    evaluate.add_argument("--out", default="eval-report", metavar="DIR", help="folder for report.md, plots, "
                                                                               "results.json (default eval-report)")
    evaluate.add_argument("--seeds", type=int, default=3, metavar="N",
                          help="seeds per prompt, for diversity (default 3)")
    evaluate.add_argument("--reference", metavar="FILE", help="reference set (default: the one engine/data ships)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    evaluate.set_defaults(func=cmd_eval)

    play = commands.add_parser("play", help="play a clip folder's mix through the audio device (JACK, PortAudio)")
    play.add_argument("dir", metavar="DIR", help="a clip folder (or an audio file)")
    play.add_argument("--stem", metavar="PART", help="play stems/PART instead of the mix")
    play.add_argument("--device", help="output device name or index (default: PortAudio's default)")
    play.add_argument("--quiet", action="store_true", help="print nothing when done")
    play.set_defaults(func=cmd_play)

    clock = commands.add_parser("clock", help="follow MIDI beat clock: tempo, transport, bar:beat")
    _add_midi_options(clock)
    clock.add_argument("--json", action="store_true", help="one JSON line per beat and per transport change")
    clock.add_argument("--beats", type=int, metavar="N", help="stop after N beats (default: until Ctrl-C)")
    clock.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds")
    clock.set_defaults(func=cmd_clock)

    bridge = commands.add_parser("bridge", help="the live loop: generate clips that play from the next bar")
    _add_midi_options(bridge)
    bridge.add_argument("--out", dest="connect_out", metavar="PORT", help="connect 'Cadenza Out' to this port")
    bridge.add_argument("--engine", metavar="TARGET",
                        help="a running engine or replicas, any gRPC target (default: start one)")
    bridge.add_argument("--session", metavar="NAME", help="the session the clips are takes of "
                                                          "(default: the current folder's name)")
    bridge.add_argument("--state", metavar="DIR", help="where a started engine keeps sessions")
    bridge.set_defaults(func=cmd_bridge)

    jam = commands.add_parser("jam", help="play along: the next N-bar phrase, continuing the last one and what "
                                          "you played, ready before its bar line")
    jam.add_argument("prompt")
    jam.add_argument("--phrase", type=int, default=4, metavar="N", help="bars per phrase (default 4)")
    jam.add_argument("--midi-api", choices=arguments.MIDI_APIS, default="jack", help="as for `cadenza bridge`")
    jam.add_argument("--in", dest="jam_in", action="append", metavar="PORT",
                     help="connect 'Cadenza In' (clock and playing) to this port; repeat for several")
    jam.add_argument("--out", dest="connect_out", metavar="PORT", help="connect 'Cadenza Out' to this port")
    jam.add_argument("--meter", default="4/4", help="the DAW's time signature: MIDI clock does not carry it")
    _add_sync_option(jam)
    jam.add_argument("--session", metavar="NAME", help="the session (default: the current folder's name)")
    jam.add_argument("--engine", metavar="TARGET",
                     help="a running engine or replicas, any gRPC target (default: start one)")
    jam.add_argument("--state", metavar="DIR", help="where a started engine keeps sessions")
    jam.add_argument("--phrases", type=int, metavar="M", help="stop after M phrases (default: until Stop or Ctrl-C)")
    for what in ("keep", "reject"):
        gesture = jam.add_mutually_exclusive_group()
        gesture.add_argument(f"--{what}-note", type=int, metavar="N", help=f"this note (any channel) = {what}")
        gesture.add_argument(f"--{what}-cc", type=int, metavar="N", help=f"this CC pressed (value >= 64) = {what}")
    jam.set_defaults(func=cmd_jam)

    train = commands.add_parser("train", help="train the generator (or fine-tune it on your MIDI files)")
    train.add_argument("--data", metavar="DIR", help="fine-tune on the .mid files in DIR (default: train from "
                       "scratch on the music21 corpus)")
    train.add_argument("--out", required=True, metavar="PATH", help="checkpoint file to write")
    train.add_argument("--init", metavar="PATH", help="checkpoint to start from (default with --data: the shipped one)")
    train.add_argument("--steps", type=int, metavar="N",
                       help=f"optimizer steps (default {config.TRAIN_STEPS}; "
                            f"{config.FINE_TUNE_STEPS} when fine-tuning)")
    train.add_argument("--seed", type=int, metavar="S",
                       help="seed: the same data, steps and seed give the same weights")
    train.add_argument("--force", action="store_true", help="replace an existing checkpoint file")
    train.add_argument("--drums", action="store_true",
                       help="train the drum model on the Groove MIDI Dataset folder given with --data")
    train.add_argument("--genre-balance", type=float, metavar="B",
                       help="with --drums: draw a batch's windows genre first, a genre weighted by its window "
                            "count to the power B (default 1: every window alike; 0: every genre alike)")
    train.add_argument("--parts", action="store_true", help="train the part model (melody, bass, comping) on a "
                       "local POP909 copy given by --data (default /work/data/pop909)")
    train.add_argument("--perform", action="store_true", help="train the performance model (how the part model's "
                       "notes are played: velocity and timing) on a local POP909 copy given by --data")
    train.add_argument("--minutes", type=float, metavar="M", help="with --parts: stop after M minutes (default 28)")
    train.add_argument("--from-feedback", metavar="SESSION",
                       help="fine-tune on the kept and well-rated takes of a session (rejected ones are left out)")
    train.add_argument("--engine", metavar="TARGET",
                       help="with --from-feedback: the engine (any gRPC target) holding the session")
    train.add_argument("--state", metavar="DIR", help="with --from-feedback: a started engine's sessions folder")
    train.set_defaults(func=cmd_train)

    from bridge.cocreate_cli import add_parsers as add_cocreation_parsers

    add_cocreation_parsers(commands)
    return parser


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; an unknown flag is refused by its own command's parser, with the
    closest flag that command has."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        import difflib

        command = args._commands[args.command]
        flags = [flag for action in command._actions for flag in action.option_strings]
        hints = []
        for word in extra:
            close = difflib.get_close_matches(word.split("=", 1)[0], flags, n=1) if word.startswith("-") else []
            if close:
                hints.append(f"{word} -> did you mean {close[0]}?")
        command.error(f"unrecognized arguments: {' '.join(extra)}" + (f" ({'; '.join(hints)})" if hints else ""))
    return args


# Request fields as the engine names them in errors -> the flags a CLI user typed.
_FLAGS = {"tempo_bpm": "--tempo", "start_bar": "--at", "bars": "--bars", "key": "--key", "meter": "--meter",
          "seed": "--seed", "chords": "--chords", "sample_rate": "--sample-rate", "loudness_lufs": "--lufs",
          "plugins": "--plugin", "presets": "--preset", "soundfont": "--soundfont"}


def _as_flags(message: str) -> str:
    """An engine error about a request field, told with the flag that set it (tempo_bpm: -> --tempo:)."""
    import re

    match = re.match(r"([a-z_]+)(?:\[([^\]]*)\])?: ", message)
    if not match or match.group(1) not in _FLAGS:
        return message
    flag = _FLAGS[match.group(1)] + (f" {match.group(2)}" if match.group(2) else "")
    return f"{flag}: {message[match.end():]}"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        return args.func(args)
    except CadenzaError as error:  # the one mapping: each error carries its exit code (engine/errors.py)
        print(f"cadenza: error: {_as_flags(str(error))}", file=sys.stderr)
        return error.exit_code
    except FileExistsError as error:
        print(f"cadenza: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as error:  # a full disk, an unwritable --out, a file where a folder should be
        print(f"cadenza: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("cadenza: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
