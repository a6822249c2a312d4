"""The corpus model's decoding keeps the form's melody rhythm in any meter (engine/model/decode.py): at a
phrase end the melody's note at the bar's middle beat group is held to the bar's end (at the clip's
close, the note from the downbeat: the whole bar); a returning bar
brings back its source bar's rhythm, whole or its head; a bar that answers the one before is drawn again when
it repeats its rhythm."""
from __future__ import annotations

import pytest

from engine.model.generator import Request, load
from engine.music.theory import Key, Meter

# (meter, the middle beat group in ticks: the 3rd beat of 4/4, the 2nd of 3/4, the 2nd dotted quarter of 6/8)
METERS = [(Meter(4, 4), 960), (Meter(3, 4), 480), (Meter(6, 8), 720)]


@pytest.mark.parametrize(("meter", "middle"), METERS, ids=lambda m: str(m))
def test_phrase_ends_hold_and_returns_keep_their_head_in_any_meter(meter: Meter, middle: int) -> None:
    generator = load()
    bar = round(meter.quarters_per_bar * 480)
    for seed in range(4):
        request = Request("chorale", Key("G", "major"), meter, 100.0, 2, 8, {0: (60, 84), 3: (40, 62)}, False, seed,
                          phrase_ends=(3, 7), returns=((2, 0, False), (4, 0, True)),
                          contrasts=tuple((b, b - 1) for b in (1, 2, 3, 5, 6, 7)))
        melody = [n for n in generator.generate(request) if n.slot == 0]
        for end in (3, 7):
            start = end * bar
            sounding = [n for n in melody if n.time <= start + middle < n.time + n.duration]
            assert sounding, (seed, end)  # the melody sounds at the middle of its phrase's last bar
            assert sounding[0].time + sounding[0].duration == start + bar, (seed, end)  # and holds to its end
            assert not [n for n in melody if start + middle < n.time < start + bar], (seed, end)
        closing = [n for n in melody if n.time <= 7 * bar < n.time + n.duration]
        assert closing and closing[0].time + closing[0].duration == 8 * bar, seed  # the last note: the whole bar

        heads = [[(n.time - b * bar, min(n.duration, middle - (n.time - b * bar))) for n in melody
                  if b * bar <= n.time < b * bar + middle] for b in (0, 2)]
        if not [n for n in melody if n.time < 2 * bar < n.time + n.duration]:  # no note held into bar 3
            assert heads[1] == heads[0], seed
        bars = [[(n.time - b * bar, n.duration) for n in melody if b * bar <= n.time < (b + 1) * bar] for b in (0, 4)]
        if not [n for n in melody if n.time < 4 * bar < n.time + n.duration]:
            assert bars[1] == bars[0], seed  # a section's opening returns whole

