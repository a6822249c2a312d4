"""Score <-> Standard MIDI File bytes: the only place a clip crosses into bytes."""
from __future__ import annotations

from symusic import Score

from engine.config import MIDI_MAX_BYTES, PARTS_MAX
from engine.errors import SpecError


def score_to_smf(score: Score) -> bytes:
    """A type 1 SMF: tempo, meter and key in the first track, one named track per part."""
    return bytes(score.dumps_midi())


def smf_to_score(data: bytes, field: str = "midi") -> Score:
    """Parse SMF bytes; SpecError naming ``field`` if they are not a usable MIDI file."""
    if not data:
        raise SpecError(field, "is empty; a Standard MIDI File is expected")
    if len(data) > MIDI_MAX_BYTES:
        raise SpecError(field, f"is {len(data)} bytes; at most {MIDI_MAX_BYTES} are accepted")
    if data[:4] != b"MThd":
        raise SpecError(field, "is not a Standard MIDI File (it does not start with 'MThd')")
    try:
        score = Score.from_midi(data)
    except Exception as error:  # symusic raises RuntimeError/ValueError with its own text
        raise SpecError(field, f"is not a readable Standard MIDI File: {error}") from None
    if len(score.tracks) > PARTS_MAX:
        raise SpecError(field, f"has {len(score.tracks)} tracks; at most {PARTS_MAX} are accepted")
    return score
