"""Preview: play a clip folder's mix (or one stem) through PortAudio (sounddevice), e.g. on JACK."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from engine.errors import Unavailable

AUDIO_SUFFIXES = (".wav", ".flac")


class PlaybackError(Unavailable):
    """Nothing to play, or no device to play it on; the message says which and what to do."""


def find_audio(folder: Path, stem: str | None = None) -> Path:
    """The mix (or stems/STEM) of a clip folder, as .wav or .flac."""
    folder = Path(folder)
    base = folder / "stems" / stem if stem else folder / "mix"
    for suffix in AUDIO_SUFFIXES:
        if base.with_suffix(suffix).is_file():
            return base.with_suffix(suffix)
    if folder.is_file() and folder.suffix.lower() in AUDIO_SUFFIXES:
        return folder
    raise PlaybackError(f"no {base.name}.wav or {base.name}.flac in {base.parent} (is {folder} a clip folder?)")


def play(path: Path, device: str | int | None = None, stem: str | None = None) -> tuple[Path, float]:
    """Play a clip folder's mix (or ``stem``) to the end; returns the file played and its seconds."""
    import sounddevice

    audio_path = find_audio(Path(path), stem)
    audio, rate = soundfile.read(audio_path, dtype="float32", always_2d=True)
    try:
        sounddevice.check_output_settings(device=device, channels=audio.shape[1], samplerate=rate)
    except Exception as error:
        raise PlaybackError(f"cannot play {audio_path.name} ({rate} Hz, {audio.shape[1]} channels) on "
                            f"{device if device is not None else 'the default device'}: {error} "
                            f"(a JACK server must run at the file's rate; devices: "
                            f"{', '.join(d['name'] for d in sounddevice.query_devices()) or 'none'})") from None
    # A blocking stream: PortAudio's own thread feeds the device from a ring buffer in C, so the
    # Python interpreter (GIL, garbage collector) never runs in the audio callback and cannot glitch it.
    # Written a tenth of a second at a time, so Ctrl-C (KeyboardInterrupt) is seen between blocks;
    # it aborts the stream at once (no draining of what is buffered) and propagates.
    block = max(1, rate // 10)
    with sounddevice.OutputStream(samplerate=rate, channels=audio.shape[1], dtype="float32", device=device,
                                  latency="high") as stream:
        try:
            for start in range(0, len(audio), block):
                stream.write(np.ascontiguousarray(audio[start:start + block]))
        except KeyboardInterrupt:
            stream.abort()
            raise
    return audio_path, len(audio) / rate
