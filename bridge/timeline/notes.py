"""A clip folder as plain tab-separated lines, for DAW scripts (Ardour Lua, ReaScript) that have no
JSON or MIDI file reader: the clip's tempo and bar, one line per part, note and stem.

    clip  <bars> <tempo_bpm> <numerator> <denominator> <start_bar>
    part  <index> <program or -1> <channel> <name>
    note  <part index> <start> <length> <pitch> <velocity> <channel>   (quarter notes from the clip's downbeat)
    stem  <name> <absolute path>
"""
from __future__ import annotations

from collections import defaultdict, deque

from bridge.timeline.clip import Clip, MidiPart


def _clean(text: str) -> str:
    return " ".join(str(text).split())  # no tab or newline can break a line


def part_notes(part: MidiPart) -> list[tuple[float, float, int, int, int]]:
    """(start, length, pitch, velocity, channel) of every note of ``part``, in quarter notes, by start."""
    open_notes: dict[tuple[int, int], deque] = defaultdict(deque)
    notes = []
    for beat, message in part.events:
        if message.type == "note_on" and message.velocity > 0:
            open_notes[(message.channel, message.note)].append((beat, message.velocity))
        elif message.type in ("note_off", "note_on") and open_notes[(message.channel, message.note)]:
            start, velocity = open_notes[(message.channel, message.note)].popleft()
            notes.append((start, beat - start, message.note, velocity, message.channel))
    return sorted(notes)


def note_lines(clip: Clip) -> list[str]:
    """The lines described in this module's docstring, for ``clip``."""
    meter = clip.spec["meter"]
    lines = [f"clip\t{int(clip.spec['bars'])}\t{float(clip.spec['tempo_bpm']):g}\t{int(meter['numerator'])}\t"
             f"{int(meter['denominator'])}\t{clip.start_bar}"]
    for index, part in enumerate(clip.parts, 1):
        messages = [message for _, message in part.events if not message.is_meta]
        program = next((m.program for m in messages if m.type == "program_change"), -1)
        channel = next((m.channel for m in messages if hasattr(m, "channel")), 0)
        lines.append(f"part\t{index}\t{program}\t{channel}\t{_clean(part.name)}")
        lines += [f"note\t{index}\t{start:.6f}\t{length:.6f}\t{pitch}\t{velocity}\t{chan}"
                  for start, length, pitch, velocity, chan in part_notes(part)]
    lines += [f"stem\t{_clean(stem.name)}\t{stem.path.resolve()}" for stem in clip.stems]
    return lines
