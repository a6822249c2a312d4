"""The Python API: a prompt in, a clip out, in one call and without a server.

    import engine
    clip = engine.generate("Upbeat ragtime piano in 7/4", bars=8, seed=7)
    clip.write("out/ragtime")          # clip.mid, spec.json, and stems + mix.wav once rendered

torch loads on the first `generate()`, not at `import engine`.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import SpecError
from engine.music.midi import score_to_smf
from engine.music.spec import MusicSpec

if TYPE_CHECKING:
    from symusic import Score

    from plugin_host.stems import Stems

OVERRIDES = ("tempo_bpm", "key", "meter", "bars", "seed", "start_bar")


@dataclass
class Clip:
    """What `generate()` returns: the resolved spec, the Score, and the stems once rendered."""

    spec: MusicSpec
    score: Score
    stems: Stems | None = field(default=None, repr=False)

    def midi_bytes(self) -> bytes:
        """The clip as a type 1 Standard MIDI File: tempo, meter and key first, one named track per part."""
        return score_to_smf(self.score)

    def render(self, sample_rate: int = 48000, **options: Any) -> Stems:
        """Render every part to a stem and the mix (plugin_host.render's options); kept on the clip."""
        from plugin_host.render import render

        roles = {part.name: part.role for part in self.spec.parts}
        self.stems = render(self.score, sample_rate, style=self.spec.style, roles=roles, bars=self.spec.bars,
                            **options)
        return self.stems

    def write(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write clip.mid and spec.json (and stems/<part>.wav and mix.wav if rendered) into ``folder``.

        Each file is written to a temporary name and renamed, so an interrupted write leaves no
        half-written file; existing clip files are replaced.
        """
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        written = [_write(out / "spec.json", (json.dumps(self.spec.to_json(), indent=2) + "\n").encode())]
        if self.stems is not None:
            import io

            import soundfile

            (out / "stems").mkdir(exist_ok=True)
            audio = {**{f"stems/{name}.wav": data for name, data in self.stems.parts.items()},
                     "mix.wav": self.stems.mix}
            for name, data in audio.items():
                buffer = io.BytesIO()
                soundfile.write(buffer, data, self.stems.sample_rate, subtype="PCM_24", format="WAV")
                written.append(_write(out / name, buffer.getvalue()))
        written.append(_write(out / "clip.mid", self.midi_bytes()))
        return written


def _write(path: Path, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def generate(prompt: str, **overrides: Any) -> Clip:
    """Understand ``prompt`` and compose a clip; keyword overrides win over the text.

    Overrides: tempo_bpm, key ("F# minor"), meter ("7/4"), bars, seed, start_bar. A bad value
    raises SpecError naming the field and what is accepted.
    """
    from engine.compose.pipeline import compose
    from engine.understand.prompt import Overrides, understand

    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise SpecError(unknown[0], f"is not an override; accepted: {', '.join(OVERRIDES)}")
    spec = understand(prompt, Overrides(**overrides))
    return Clip(spec=spec, score=compose(spec))
