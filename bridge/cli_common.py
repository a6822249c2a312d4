"""What the `cadenza` commands share: exit codes, the engine for a call, the session, argument helpers.

A module of its own so that bridge/cli.py and bridge/cocreate_cli.py both build on it and
neither imports the other's internals.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import EXIT_FAILURE, EXIT_USAGE


def default_session() -> str:
    """The session a DAW project gets by default: the current folder's name."""
    return Path.cwd().name or "default"


def read_token(args: argparse.Namespace) -> str:
    import os

    from engine.serving.security import TOKEN_FILE, config_dir

    if args.token_file:
        return Path(args.token_file).read_text().strip()
    if os.environ.get("CADENZA_TOKEN"):
        return os.environ["CADENZA_TOKEN"]
    return (config_dir() / TOKEN_FILE).read_text().strip()


class Engine:
    """The engine for this call: the one named by --engine, else the user's running engine, else
    one started in the background (bridge/local_engine.py says which)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from bridge.client import EngineClient

        plugins = list(pairs(getattr(args, "plugin", None) or [], "--plugin").values())
        # The engine reads presets only from plugin folders: those of the preset files named here count.
        plugins += [path for path in pairs(getattr(args, "preset", None) or [], "--preset").values()
                    if Path(path).is_file()]
        # ... and SoundFonts only from SoundFont and plugin folders: a --soundfont elsewhere counts too.
        soundfont = getattr(args, "soundfont", None)
        if soundfont and Path(soundfont).is_file() and not _in_soundfont_folder(soundfont):
            plugins.append(soundfont)
        self.connection = None
        if args.engine:
            tls_ca = Path(args.tls_ca).read_bytes() if args.tls_ca else None
            token = read_token(args) if tls_ca is not None else None
            self.client = EngineClient(args.engine, tls_ca=tls_ca, token=token)
            self.client.check()
        else:
            from bridge.local_engine import connect_local

            # An engine started for this call only may load the plugins named on this command line
            # (the user chose them); a running engine loads only from its own plugin folders.
            self.connection = connect_local(getattr(args, "state", None), plugins)
            self.client = self.connection.client

    def __enter__(self):
        return self.client

    def __exit__(self, *exc) -> None:
        if self.connection is not None:
            self.connection.close()
        else:
            self.client.close()


def _in_soundfont_folder(path: str) -> bool:
    """True if an engine reads ``path`` as a SoundFont without being given its folder."""
    from plugin_host.folders import soundfont_folders

    resolved = Path(path).expanduser().resolve()
    return any(resolved.is_relative_to(folder) for folder in soundfont_folders())


def check_out_folder(out: Path) -> None:
    """A usage error (exit 2) before any work if --out is a file or under one."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                what = "is a file" if folder == out else f"is inside {folder}, which is a file"
                print(f"cadenza: error: --out {out} {what}; give a folder for the clip", file=sys.stderr)
                raise SystemExit(EXIT_USAGE)
            return


def print_clip_summary(args: argparse.Namespace, clip) -> None:
    """Where the clip sits, what plays it, how loud it is, the spec's notes, and every file written."""
    spec = clip.spec
    if spec.get("start_bar", 1) != 1:
        print(f"  made for bar {spec['start_bar']}: clip.mid starts there, the stems' time reference is its sample")
    for role, path in pairs(getattr(args, "plugin", None), "--plugin").items():
        print(f"  {role}: plugin {path}")
    audio = clip.audio
    if audio is not None:
        print(f"  mix {audio.loudness_lufs:.1f} LUFS, true peak {audio.true_peak_dbtp:.1f} dBTP, "
              f"{audio.frames / audio.sample_rate:.2f} s at {audio.sample_rate} Hz, "
              f"tail {getattr(args, 'tail', 'cut')}")
        for part, source in audio.sources.items():  # spec.json's "sound" records the same
            print(f"  sound {part}: {source}")
        print(f"  processing: {', '.join(audio.treatments) or 'none'}")
    for note in spec.get("notes", []):
        print(f"  note: {note}")
    for path in clip.files:
        print(f"  {path}")


def pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """ROLE=PATH arguments as a dict; a clear usage error for anything else."""
    pairs = {}
    for value in values or []:
        key, sep, path = value.partition("=")
        if not sep or not key or not path:
            print(f"cadenza: error: {flag} takes ROLE=PATH (a role like bass, or a part name), got {value!r}",
                  file=sys.stderr)
            raise SystemExit(EXIT_USAGE)
        pairs[key] = str(Path(path).expanduser().resolve())
    return pairs


def train_checkpoint(data: str | None, out: str, steps: int | None, seed: int | None, init: str | None,
                     *, force: bool = False) -> int:
    """`cadenza train`: a checkpoint at ``out`` from the corpus, or fine-tuned on a folder of MIDI files."""
    from engine.model.generator import default_checkpoint
    from engine.training.train import run

    out = Path(out)
    if out.exists() and not force:
        print(f"cadenza: error: {out} exists; pass --force to replace it", file=sys.stderr)
        return EXIT_FAILURE
    if data is not None and not Path(data).is_dir():
        print(f"cadenza: error: --data {data} is not a folder of MIDI files", file=sys.stderr)
        return EXIT_USAGE
    init = Path(init) if init else (default_checkpoint() if data else None)
    try:
        checkpoint = run(Path(data) if data else None, out, steps, seed, init)
    except ValueError as error:
        print(f"cadenza: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if checkpoint is None:  # a torchrun rank other than 0: rank 0 wrote the checkpoint
        return 0
    record = checkpoint["record"]
    print(f"wrote {out}: {record['parameters']:,} parameters, {record['steps']} steps in "
          f"{record['train_seconds'] / 60:.1f} min, validation loss {record['validation_loss']:.3f} "
          f"(perplexity {record['validation_perplexity']:.2f})")
    return 0
