"""Build Cadenza's own VST3 plug-ins from the C++ source beside this file, with the system g++.

No VST3 plug-in is installable on Debian (its packages are VST2/LV2, and pedalboard on Linux loads
VST3 only), so the tests compile two small real ones: ``CadenzaSynth`` (a polyphonic synth,
an instrument) and ``CadenzaDrive`` (a saturation effect). They implement the VST3 binary
interface declared by hand in vst3_abi.h (no SDK), as bundles
``NAME.vst3/Contents/x86_64-linux/NAME.so`` that pedalboard (JUCE) loads like any other.

    python -m tests.plugins.build DIR     # builds DIR/CadenzaSynth.vst3 and DIR/CadenzaDrive.vst3
"""
from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
PLUGINS = {"CadenzaSynth": "cadenza_synth.cpp", "CadenzaDrive": "cadenza_drive.cpp"}
HEADERS = ("vst3_abi.h", "plugin_base.h")
# Export only the module's entry points: the C++ runtime's template symbols stay private, so they
# cannot interpose on the host's own (JUCE's) copies.
VERSION_SCRIPT = "{ global: GetPluginFactory; ModuleEntry; ModuleExit; local: *; };\n"
COMPILER = "g++"


class BuildError(RuntimeError):
    """The plug-in could not be compiled; the message carries the compiler's output."""


def bundle_binary(bundle: Path) -> Path:
    """Where a Linux VST3 bundle keeps its shared library."""
    return bundle / "Contents" / f"{platform.machine()}-linux" / f"{bundle.stem}.so"


def build_plugin(name: str, folder: Path) -> Path:
    """Compile plug-in ``name`` (a key of PLUGINS) into ``folder``/``name``.vst3; return the bundle.

    Rebuilds only when a source file is newer than the built library."""
    if name not in PLUGINS:
        raise BuildError(f"no plug-in {name!r}; known: {', '.join(PLUGINS)}")
    if shutil.which(COMPILER) is None:
        raise BuildError(f"no C++ compiler ({COMPILER}); install g++ (Debian: build-essential)")
    bundle = Path(folder) / f"{name}.vst3"
    binary = bundle_binary(bundle)
    sources = [SOURCE_DIR / PLUGINS[name], *(SOURCE_DIR / header for header in HEADERS)]
    if binary.is_file() and binary.stat().st_mtime >= max(source.stat().st_mtime for source in sources):
        return bundle
    binary.parent.mkdir(parents=True, exist_ok=True)
    script = binary.parent / "exports.map"
    script.write_text(VERSION_SCRIPT)
    command = [COMPILER, "-std=c++17", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-fvisibility=hidden",
               f"-Wl,--version-script={script}", "-o", str(binary), str(sources[0])]
    done = subprocess.run(command, capture_output=True, text=True)
    script.unlink()
    if done.returncode != 0:
        raise BuildError(f"building {name} failed:\n{done.stderr}")
    return bundle


def build_all(folder: Path) -> dict[str, Path]:
    """Build every plug-in into ``folder``; return {name: bundle}."""
    return {name: build_plugin(name, folder) for name in PLUGINS}


def main() -> None:
    parser = argparse.ArgumentParser(description="Build Cadenza's VST3 plug-ins (CadenzaSynth, CadenzaDrive).")
    parser.add_argument("folder", type=Path, help="where to put the .vst3 bundles (e.g. ~/.vst3)")
    args = parser.parse_args()
    for bundle in build_all(args.folder.expanduser()).values():
        print(bundle)


if __name__ == "__main__":
    main()
