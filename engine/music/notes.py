"""The note on the beat grid: one type wherever a stage reasons about notes (analysis, decoding, composing).

A Score holds symusic's own notes; `GridNote` is what the stages read from and write to it.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_VELOCITY = 96


@dataclass(frozen=True)
class GridNote:
    """A note in ticks from the clip's first downbeat: onset, length, MIDI pitch, velocity, voice slot.

    ``slot`` is the model voice that wrote it (0 melody ... 3 bass; see engine/model/tokens.py),
    0 where no voice applies. Audio-side notes in seconds are plugin_host's ``TimedNote``.
    """

    time: int
    duration: int
    pitch: int
    velocity: int = DEFAULT_VELOCITY
    slot: int = 0

    @property
    def end(self) -> int:
        return self.time + self.duration
