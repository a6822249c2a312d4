"""`cadenza`: the command line. A thin client of the engine; it starts one when none answers.

Heavy imports (grpc stubs, numpy, audio) happen inside the commands, so `--help` is instant.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tempo", type=float, metavar="BPM", help="tempo in quarter notes per minute (20-400)")
    parser.add_argument("--key", help='key, e.g. "F# minor", "Bb", "D dorian"')
    parser.add_argument("--meter", help="time signature, e.g. 7/4")
    parser.add_argument("--bars", type=int, metavar="N", help="length in bars (1-256)")
    parser.add_argument("--seed", type=int, metavar="S", help="random seed: the same spec and seed give the same clip")
    parser.add_argument("--engine", metavar="HOST:PORT", help="a running engine (default: start one for this call)")


def _overrides(args: argparse.Namespace):
    from protos.cadenza.v1 import engine_pb2 as pb

    fields = {"tempo_bpm": args.tempo, "key": args.key, "meter": args.meter, "bars": args.bars,
              "seed": args.seed, "start_bar": getattr(args, "at", None)}
    return pb.Overrides(**{k: v for k, v in fields.items() if v is not None})


class _Engine:
    """The engine for this call: the one named by --engine, or one started here."""

    def __init__(self, target: str | None) -> None:
        from bridge.client import EngineClient, EngineProcess

        self.process = None if target else EngineProcess()
        self.client = EngineClient(target or self.process.target)
        self.client.check()

    def __enter__(self):
        return self.client

    def __exit__(self, *exc) -> None:
        self.client.close()
        if self.process:
            self.process.close()


def _spec_json(spec) -> dict:
    from google.protobuf.json_format import MessageToDict

    data = MessageToDict(spec, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    data["sources"] = {k: v.removeprefix("SOURCE_").lower() for k, v in data.get("sources", {}).items()}
    data["seed"] = int(data["seed"])
    return data


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
        ("dynamics", data["arc"], sources.get("arc")),
        ("swing", "yes" if data["swing"] else "no", sources.get("swing")),
        ("seed", str(data["seed"]), sources.get("seed")),
    ]
    for name, value, source in rows:
        print(f"  {name:<10} {value:<22} ({source})")
    print(f"  {'parts':<10} ({sources.get('parts')})")
    for part in data["parts"]:
        print(f"    {part['name']:<18} {part['role']:<8} {part['instrument']}")
    for note in data.get("notes", []):
        print(f"  note: {note}")


def cmd_serve(args: argparse.Namespace) -> int:
    from engine.server import serve

    return serve(args.host, args.port)


def cmd_describe(args: argparse.Namespace) -> int:
    with _Engine(args.engine) as client:
        data = _spec_json(client.describe(args.prompt, _overrides(args)))
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_spec(data)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bridge.clip_files import check_free, write_clip

    out = Path(args.out)
    check_free(out, args.force)
    with _Engine(args.engine) as client, tqdm(total=100, unit="%", desc="starting",
                                               bar_format="{desc:<10} {bar} {percentage:3.0f}%",
                                               disable=args.quiet) as bar:
        def progress(weight_from: float, weight: float):
            def update(event) -> None:
                bar.set_description_str(event.stage)
                bar.n = round(100 * (weight_from + weight * event.fraction))
                bar.refresh()
            return update

        result = client.generate(args.prompt, _overrides(args), progress(0.0, 0.3))
        audio = client.render(result.midi, args.sample_rate, progress(0.3, 0.65))
        bar.set_description_str("write")
        spec = _spec_json(result.spec)
        paths = write_clip(out, spec, result.midi, audio.sample_rate, audio.parts, audio.mix, args.force)
        bar.n = 100
        bar.set_description_str("done")
        bar.refresh()
    if not args.quiet:
        print(f"{spec['bars']} bars of {spec['style']} in {spec['key']['tonic']} {spec['key']['mode']}, "
              f"{spec['meter']['numerator']}/{spec['meter']['denominator']} at {spec['tempo_bpm']:g} BPM, "
              f"seed {spec['seed']}: {', '.join(p['name'] for p in spec['parts'])}")
        for path in paths:
            print(f"  {path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from engine.generator import default_checkpoint
    from engine.train import run

    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"cadenza: error: {out} exists; pass --force to replace it", file=sys.stderr)
        return EXIT_FAILURE
    if args.data is not None and not Path(args.data).is_dir():
        print(f"cadenza: error: --data {args.data} is not a folder of MIDI files", file=sys.stderr)
        return EXIT_USAGE
    init = Path(args.init) if args.init else (default_checkpoint() if args.data else None)
    try:
        checkpoint = run(Path(args.data) if args.data else None, out, args.steps, args.seed, init)
    except ValueError as error:
        print(f"cadenza: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    record = checkpoint["record"]
    print(f"wrote {out}: {record['parameters']:,} parameters, {record['steps']} steps in "
          f"{record['train_seconds'] / 60:.1f} min, validation loss {record['validation_loss']:.3f} "
          f"(perplexity {record['validation_perplexity']:.2f})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cadenza", description="Music from a sentence, into your DAW session.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the engine (gRPC, loopback only by default)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=50051, help="port (0 = any free port; default 50051)")
    serve.set_defaults(func=cmd_serve)

    describe = commands.add_parser("describe", help="show what the engine understands from a prompt")
    describe.add_argument("prompt")
    describe.add_argument("--json", action="store_true", help="print the spec as JSON")
    _add_overrides(describe)
    describe.set_defaults(func=cmd_describe)

    generate = commands.add_parser("generate", help="make a clip: MIDI, stems, mix and spec")
    generate.add_argument("prompt")
    generate.add_argument("--out", required=True, metavar="DIR", help="folder for the clip")
    generate.add_argument("--at", type=int, metavar="BAR", help="project bar the clip is made for (default 1)")
    generate.add_argument("--sample-rate", type=int, default=0, metavar="HZ", help="default 48000")
    generate.add_argument("--force", action="store_true", help="replace a clip already in DIR")
    generate.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    _add_overrides(generate)
    generate.set_defaults(func=cmd_generate)

    train = commands.add_parser("train", help="train the generator (or fine-tune it on your MIDI files)")
    train.add_argument("--data", metavar="DIR", help="fine-tune on the .mid files in DIR (default: train from "
                       "scratch on the music21 corpus subset)")
    train.add_argument("--out", required=True, metavar="PATH", help="checkpoint file to write")
    train.add_argument("--init", metavar="PATH", help="checkpoint to start from (default with --data: the shipped one)")
    train.add_argument("--steps", type=int, metavar="N", help="optimizer steps (default 360; 200 when fine-tuning)")
    train.add_argument("--seed", type=int, metavar="S",
                       help="seed: the same data, steps and seed give the same weights")
    train.add_argument("--force", action="store_true", help="replace an existing checkpoint file")
    train.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bridge.client import EngineUnavailable, RequestRejected
    from bridge.clip_files import ClipExists

    try:
        return args.func(args)
    except RequestRejected as error:
        print(f"cadenza: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (EngineUnavailable, ClipExists, FileExistsError) as error:
        print(f"cadenza: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("cadenza: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
