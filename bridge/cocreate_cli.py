"""The co-creation verbs of `cadenza`: vary, infill, continue, accompany, rearrange, keep, reject,
rate, history, export, taste. Thin: every verb is one Engine RPC; the engine keeps the history.

A verb that makes a take writes the same clip folder as `generate` (clip.mid, stems, mix.wav,
spec.json, clip.png; ``--midi-only`` for clip.mid and spec.json) to ``--out DIR`` (default
./cadenza-takes/TAKE/) and, with ``--json``, prints one JSON object: take, parent, operation,
session and every file written.

A take is named by its id, any unique start of it, or ``last`` (the newest take). Without
``--session`` it is looked for in the current folder's session and then in every session; with
``--session`` only there (the error names the session that holds it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bridge import arguments
from bridge.cli_common import (
    EXIT_USAGE,
    Engine,
    check_out_folder,
    default_session,
    print_clip_summary,
    train_checkpoint,
)

TAKES_DIR = "cadenza-takes"
TAKE_HELP = "a take id, any unique start of one, or 'last'"


def _session(args: argparse.Namespace) -> str:
    return args.session or default_session()


def _engine(args: argparse.Namespace) -> Engine:
    return Engine(args)


def _resolve(client, args: argparse.Namespace, ref: str | None = None):
    """The take ``ref`` (default ``args.take``) names, found by the engine (TakeResult, with its session)."""
    from protos.cadenza.v1 import engine_pb2 as pb

    return client.call("GetTake", pb.TakeRequest(session=_session(args), take=ref or args.take,
                                                 any_session=not args.session))


def _out_folder(args: argparse.Namespace) -> Path | None:
    """``--out``, checked before any work (a file there is a usage error); None for the default."""
    from bridge.clip_files import check_free

    if not getattr(args, "out", None):
        return None
    out = Path(args.out)
    check_out_folder(out)
    check_free(out, args.force)
    return out


def _report(args: argparse.Namespace, client, result) -> int:
    """Write the new take's clip folder and say what was written."""
    from bridge.clip_folder import write_take_folder
    from bridge.paths import safe_name

    out = Path(args.out) if args.out else Path(TAKES_DIR) / safe_name(result.take, "take")
    clip = write_take_folder(client, out, result, overwrite=args.force or not args.out, midi_only=args.midi_only)
    data = {"take": result.take, "parent": result.parent or None, "operation": result.operation,
            "session": result.session, "seed": int(result.seed), "bars": result.spec.bars, **clip.as_json()}
    if args.json:
        print(json.dumps(data))
    else:
        parent = f" from {result.parent}" if result.parent else ""
        print(f"take {result.take} in session {result.session}: {result.operation}{parent}, "
              f"{result.spec.bars} bars, seed {result.seed}")
        print_clip_summary(args, clip)
    return 0


def _bars(text: str) -> tuple[int, int]:
    try:
        first, _, last = text.partition("-")
        return int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bars must be A-B, e.g. 5-6, got {text!r}") from None


def _parts(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _pairs(values: list[str] | None) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        name, sep, word = value.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--instrument takes PART=NAME, got {value!r}")
        pairs[name.strip()] = word.strip()
    return pairs


def _midi_file(path: str) -> bytes:
    data = Path(path).read_bytes()
    return data


def cmd_vary(args: argparse.Namespace) -> int:
    from protos.cadenza.v1 import engine_pb2 as pb

    _out_folder(args)
    with _engine(args) as client:
        take = _resolve(client, args)
        request = pb.VaryRequest(session=take.session, take=take.take, parts=_parts(args.parts or ""),
                                 amount=args.amount, seed=args.seed, candidates=args.candidates)
        return _report(args, client, client.call("Vary", request))


def cmd_infill(args: argparse.Namespace) -> int:
    from protos.cadenza.v1 import engine_pb2 as pb

    first, last = args.bars
    _out_folder(args)
    with _engine(args) as client:
        take = _resolve(client, args)
        request = pb.InfillRequest(session=take.session, take=take.take, part=args.part, first_bar=first,
                                   last_bar=last, seed=args.seed)
        return _report(args, client, client.call("Infill", request))


def cmd_continue(args: argparse.Namespace) -> int:
    from protos.cadenza.v1 import engine_pb2 as pb

    is_file = args.source.lower().endswith((".mid", ".midi")) or Path(args.source).is_file()
    _out_folder(args)
    request = pb.ContinueRequest(session=_session(args), bars=args.bars, seed=args.seed, prompt=args.prompt or "")
    if is_file:
        request.midi = _midi_file(args.source)
    with _engine(args) as client:
        if not is_file:
            take = _resolve(client, args, args.source)
            request.session, request.take = take.session, take.take
        return _report(args, client, client.call("Continue", request))


def cmd_accompany(args: argparse.Namespace) -> int:
    from protos.cadenza.v1 import engine_pb2 as pb

    request = pb.AccompanyRequest(session=_session(args), midi=_midi_file(args.file), add=_parts(args.add),
                                  prompt=args.prompt or "", seed=args.seed)
    _out_folder(args)
    with _engine(args) as client:
        return _report(args, client, client.call("Accompany", request))


def cmd_rearrange(args: argparse.Namespace) -> int:
    from protos.cadenza.v1 import engine_pb2 as pb

    instruments = _pairs(args.instrument)
    _out_folder(args)
    with _engine(args) as client:
        take = _resolve(client, args)
        request = pb.RearrangeRequest(session=take.session, take=take.take, key=args.key, tempo_bpm=args.tempo,
                                      instruments=instruments, style=args.style)
        return _report(args, client, client.call("Rearrange", request))


def _verdict(args: argparse.Namespace, verdict: str, reason: str = "", rating: int = 0) -> int:
    from protos.cadenza.v1 import engine_pb2 as pb

    with _engine(args) as client:
        take = _resolve(client, args)
        result = client.call("Verdict", pb.VerdictRequest(session=take.session, take=take.take, verdict=verdict,
                                                          reason=reason, rating=rating))
    shown = {"keep": "kept", "reject": "rejected", "rate": f"rated {rating}/5"}[verdict]
    if args.json:
        print(json.dumps({"take": result.take, "session": result.session, "verdict": result.verdict,
                          "reason": result.reason, "rating": result.rating}))
    else:
        print(f"take {result.take} in session {result.session} {shown}" + (f" ({reason})" if reason else ""))
    return 0


def cmd_keep(args: argparse.Namespace) -> int:
    return _verdict(args, "keep")


def cmd_reject(args: argparse.Namespace) -> int:
    return _verdict(args, "reject", args.why or "")


def cmd_rate(args: argparse.Namespace) -> int:
    return _verdict(args, "rate", rating=args.rating)


def cmd_history(args: argparse.Namespace) -> int:
    from protos.cadenza.v1 import engine_pb2 as pb

    with _engine(args) as client:
        reply = client.call("History", pb.HistoryRequest(session=_session(args)))
    rows = [{"take": t.take, "parent": t.parent or None, "operation": t.operation, "verdict": t.verdict or None,
             "reason": t.reason or None, "rating": t.rating or None, "bars": t.spec.bars, "seed": int(t.seed),
             "params": json.loads(t.params_json or "{}"), "created": t.created, "model_version": t.model_version}
            for t in reply.takes]
    if args.json:
        print(json.dumps({"session": _session(args), "takes": rows, "omitted": reply.omitted}, indent=2))
        return 0
    import time

    print(f"session {_session(args)}: {len(rows)} takes")
    if reply.omitted:
        print(f"  ({reply.omitted} older takes left out: all of them would not fit one reply; "
              "the newest are listed)")
    for row in rows:
        stamp = time.strftime("%H:%M:%S", time.localtime(row["created"]))
        verdict = row["verdict"] or ""
        if row["rating"]:
            verdict += f" {row['rating']}/5"
        reason = f" ({row['reason']})" if row["reason"] else ""
        parent = f"<- {row['parent']}" if row["parent"] else ""
        print(f"  {stamp}  {row['take']}  {row['operation']:<10} {parent:<14} {row['bars']:>3} bars  "
              f"{verdict}{reason}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """The same files as `generate`: clip.mid at its bar, stems, mix, spec.json, clip.png."""
    from bridge.clip_folder import write_take_folder

    out = _out_folder(args)
    with _engine(args) as client:
        take = _resolve(client, args)
        clip = write_take_folder(client, out, take, sample_rate=args.sample_rate, overwrite=args.force)
    if args.json:
        print(json.dumps({"take": take.take, "parent": take.parent or None, "session": take.session,
                          **clip.as_json()}))
    else:
        print(f"exported take {take.take} of session {take.session} to {out}")
        print_clip_summary(args, clip)
    return 0


def cmd_taste(args: argparse.Namespace) -> int:
    from protos.cadenza.v1 import engine_pb2 as pb

    with _engine(args) as client:
        reply = client.call("Taste", pb.TasteRequest(session=_session(args)))
    if args.json:
        print(json.dumps({"lines": list(reply.lines), "weights": dict(reply.weights), "examples": reply.examples}))
    else:
        print(f"taste of session {_session(args)}:")
        for line in reply.lines:
            print(f"  {line}")
    return 0


def _common(parser: argparse.ArgumentParser, add_engine_options, makes_take: bool = True) -> None:
    parser.add_argument("--session", metavar="NAME", help="the session (default: the current folder's name)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--state", metavar="DIR", help="where a started engine keeps sessions "
                                                       "(default: $CADENZA_STATE or your user data folder)")
    parser.add_argument("--engine", metavar="TARGET",
                        help="a running engine or replicas, any gRPC target (default: start one for this call)")
    parser.add_argument("--tls-ca", metavar="PEM", help="certificate authority of a remote engine (TLS)")
    parser.add_argument("--token-file", metavar="FILE", help="bearer token of a remote engine")
    if makes_take:
        parser.add_argument("--out", metavar="DIR", help=f"folder for the clip (default ./{TAKES_DIR}/TAKE)")
        parser.add_argument("--force", action="store_true", help="replace a clip already in --out")
        parser.add_argument("--midi-only", action="store_true", help="write clip.mid and spec.json only (no audio)")
        parser.add_argument("--seed", type=arguments.seed, metavar="S",
                            help="random seed (default: a new one, recorded)")


def add_parsers(commands, add_engine_options=None) -> None:
    """Add the co-creation subcommands to `cadenza`'s parser."""
    vary = commands.add_parser("vary", help="new material for some parts of a take; the others stay identical")
    vary.add_argument("take", help=TAKE_HELP)
    vary.add_argument("--parts", metavar="P,Q", help="parts to vary (default: all)")
    vary.add_argument("--amount", type=float, metavar="0..1", help="small keeps rhythm and contour (default 0.5)")
    vary.add_argument("--candidates", type=int, default=0, metavar="N",
                      help="drafts ranked by the session's taste (default 4 once it has verdicts)")
    _common(vary, add_engine_options)
    vary.set_defaults(func=cmd_vary)

    infill = commands.add_parser("infill", help="rewrite bars A-B of one part; nothing outside changes")
    infill.add_argument("take", help=TAKE_HELP)
    infill.add_argument("--part", required=True)
    infill.add_argument("--bars", required=True, type=_bars, metavar="A-B")
    _common(infill, add_engine_options)
    infill.set_defaults(func=cmd_infill)

    cont = commands.add_parser("continue", help="N more bars of a take or a MIDI file, same key, meter, tempo")
    cont.add_argument("source", metavar="TAKE|FILE.mid", help=f"{TAKE_HELP}; or a MIDI file")
    cont.add_argument("--bars", type=arguments.bars, required=True, metavar="N")
    cont.add_argument("--prompt", help="style words for a file (optional)")
    _common(cont, add_engine_options)
    cont.set_defaults(func=cmd_continue)

    accompany = commands.add_parser("accompany", help="add parts that fit the harmony of a MIDI file")
    accompany.add_argument("file", metavar="FILE.mid")
    accompany.add_argument("prompt", nargs="?", default="")
    accompany.add_argument("--add", required=True, metavar="bass,drums")
    _common(accompany, add_engine_options)
    accompany.set_defaults(func=cmd_accompany)

    rearrange = commands.add_parser("rearrange", help="transpose, retime or re-orchestrate a take exactly")
    rearrange.add_argument("take", help=TAKE_HELP)
    rearrange.add_argument("--key", help='target key in the same mode, e.g. "D major"')
    rearrange.add_argument("--tempo", type=float, metavar="BPM")
    rearrange.add_argument("--instrument", action="append", metavar="PART=NAME")
    rearrange.add_argument("--style", metavar="S", help="re-voice the accompaniment in this style (e.g. metal); "
                                                        "the model's melody keeps every note")
    _common(rearrange, add_engine_options)
    rearrange.set_defaults(func=cmd_rearrange)

    for name, func, text in (("keep", cmd_keep, "keep a take"), ("reject", cmd_reject, "reject a take")):
        verdict = commands.add_parser(name, help=text)
        verdict.add_argument("take", help=TAKE_HELP)
        if name == "reject":
            verdict.add_argument("--why", metavar="REASON", help='e.g. "too busy": it steers the next takes')
        _common(verdict, add_engine_options, makes_take=False)
        verdict.set_defaults(func=func)

    rate = commands.add_parser("rate", help="rate a take 1-5")
    rate.add_argument("take", help=TAKE_HELP)
    rate.add_argument("rating", type=int, metavar="1-5")
    _common(rate, add_engine_options, makes_take=False)
    rate.set_defaults(func=cmd_rate)

    history = commands.add_parser("history", help="every take of the session with its parent and verdict")
    _common(history, add_engine_options, makes_take=False)
    history.set_defaults(func=cmd_history)

    export = commands.add_parser("export", help="a take as the files `generate` writes")
    export.add_argument("take", help=TAKE_HELP)
    export.add_argument("--out", required=True, metavar="DIR")
    export.add_argument("--force", action="store_true", help="replace a clip already in DIR")
    export.add_argument("--sample-rate", type=int, default=0, metavar="HZ")
    _common(export, add_engine_options, makes_take=False)
    export.set_defaults(func=cmd_export)

    taste = commands.add_parser("taste", help="what the session's taste has learned, in words")
    _common(taste, add_engine_options, makes_take=False)
    taste.set_defaults(func=cmd_taste)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `cadenza`")


# Reward weighting by repetition: how many copies of a take the fine-tune sees.
KEEP_COPIES = 2
RATING_COPIES = {1: 0, 2: 0, 3: 1, 4: 2, 5: 3}


def feedback_weights(takes) -> dict[str, int]:
    """Copies per take for `train --from-feedback`: kept 2, rated 3-5 -> 1-3, rejected or unrated 0."""
    weights = {}
    for take in takes:
        copies = RATING_COPIES.get(take.rating, 0) if take.rating else 0
        if take.verdict == "keep":
            copies = max(copies, KEEP_COPIES)
        if take.verdict == "reject":
            copies = 0
        if copies:
            weights[take.take] = copies
    return weights


def train_from_feedback(args: argparse.Namespace) -> int:
    """`cadenza train --from-feedback SESSION`: fine-tune on the session's kept and well-rated takes.

    Reward-weighted likelihood by repetition (see feedback_weights): rejected takes are left out,
    not pushed against; the result is a new checkpoint at --out, the shipped one is untouched.
    """
    import tempfile

    from protos.cadenza.v1 import engine_pb2 as pb

    args.session = args.from_feedback
    for name in ("tls_ca", "token_file"):
        setattr(args, name, getattr(args, name, None))
    with tempfile.TemporaryDirectory(prefix="cadenza-feedback-") as folder:
        with _engine(args) as client:
            reply = client.call("History", pb.HistoryRequest(session=args.from_feedback))
            if reply.omitted:
                print(f"cadenza: note: the engine left out the session's {reply.omitted} oldest takes (too many for "
                      "one reply); their verdicts are not learned from", file=sys.stderr)
            weights = feedback_weights(reply.takes)
            if not weights:
                print(f"cadenza: error: session {args.from_feedback!r} has no kept or well-rated takes to learn from "
                      "(keep some with `cadenza keep TAKE`)", file=sys.stderr)
                return EXIT_USAGE
            for take_id, copies in weights.items():
                midi = client.call("GetTake", pb.TakeRequest(session=args.from_feedback, take=take_id)).midi
                for k in range(copies):
                    (Path(folder) / f"{take_id}-{k}.mid").write_bytes(midi)
        print(f"fine-tuning on {len(weights)} takes of session {args.from_feedback} "
              f"({sum(weights.values())} weighted copies)")
        return train_checkpoint(folder, args.out, args.steps, args.seed, args.init, force=args.force)
