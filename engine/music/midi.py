"""Score <-> Standard MIDI File bytes: the only place a clip crosses into bytes."""
from __future__ import annotations

from symusic import Score

from engine.config import (
    METER_DENOMINATORS,
    METER_NUMERATOR_MAX,
    MIDI_MAX_BYTES,
    MIDI_MAX_NOTES,
    PARTS_MAX,
    TICKS_PER_QUARTER_MAX,
)
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
    check_score(score, field)
    return score


def check_score(score: Score, field: str = "midi") -> None:
    """SpecError naming ``field`` unless the file's timing can be computed with: ticks per quarter
    1-32767, every tempo above 0 microseconds per quarter, meters N/D with N 1-32 and D a power of
    two up to 32, at most MIDI_MAX_NOTES notes."""
    if not 1 <= score.tpq <= TICKS_PER_QUARTER_MAX:
        raise SpecError(field, f"has {score.tpq} ticks per quarter note; 1-{TICKS_PER_QUARTER_MAX} are accepted")
    for tempo in score.tempos:
        if tempo.mspq <= 0:
            raise SpecError(field, f"has a tempo of {tempo.mspq} microseconds per quarter note at tick {tempo.time}; "
                                   "a tempo must be above 0")
    for meter in score.time_signatures:
        if not 1 <= meter.numerator <= METER_NUMERATOR_MAX or meter.denominator not in METER_DENOMINATORS:
            raise SpecError(field, f"has a meter of {meter.numerator}/{meter.denominator} at tick {meter.time}; "
                                   f"accepted: 1-{METER_NUMERATOR_MAX} over "
                                   f"{', '.join(map(str, METER_DENOMINATORS))}")
    notes = sum(len(track.notes) for track in score.tracks)
    if notes > MIDI_MAX_NOTES:
        raise SpecError(field, f"has {notes} notes; at most {MIDI_MAX_NOTES} are accepted")
