"""Misbehaving plugins for fault tests: real VST3 bundles compiled here with the system C compiler.

Their shared library's load-time constructor aborts the process or hangs forever, the two ways a
broken third-party plugin most often takes a host down; pedalboard's ``load_plugin`` really
loads them (dlopen). Used by the plugin host's worker tests and the engine's fault tests.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

MISBEHAVING_C = r"""
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void on_load(void) {
#if defined(SEGV)
    *(volatile int *)0 = 1;
#elif defined(CRASH)
    abort();
#else
    for (;;) pause();
#endif
}
"""


def misbehaving_bundle(folder: Path, name: str, crash: bool, segfault: bool = False) -> Path:
    """A real VST3 bundle ``name``.vst3 in ``folder`` whose library, when loaded, aborts (``crash``),
    dereferences a null pointer (``segfault``: SIGSEGV) or else hangs forever."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) to build the misbehaving test plugin")
    source = folder / "misbehave.c"
    source.write_text(MISBEHAVING_C)
    bundle = folder / f"{name}.vst3"
    binary = bundle / "Contents" / "x86_64-linux" / f"{name}.so"
    binary.parent.mkdir(parents=True)
    flags = ["-DSEGV"] if segfault else ["-DCRASH"] if crash else []
    subprocess.run(["cc", "-shared", "-fPIC", *flags, "-o", str(binary), str(source)], check=True)
    return bundle
