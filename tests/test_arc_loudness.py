"""A crescendo is heard, not only written: the rendered mix's loudness over the last quarter of the clip
against the first (ITU-R BS.1770 via pyloudnorm, gated, over each quarter), through the real SoundFont
render and mastering. Issue 16 asks for at least 6 LU either way."""
from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from engine.compose.pipeline import compose
from engine.understand.prompt import Overrides, understand
from plugin_host.render import render

MIN_CHANGE_LU = 6.0


@pytest.mark.parametrize(("prompt", "sign"), [
    ("house groove building from soft to loud, 8 bars", 1),
    ("Dramatic orchestral piece, soft and slow, building to a crescendo", 1),
    ("piano ballad fading out at the end, 8 bars", -1),
])
def test_the_mix_gets_6_lu_louder_over_a_crescendo_and_6_lu_softer_over_a_fade(prompt: str, sign: int) -> None:
    spec = understand(prompt, Overrides(seed=1))
    stems = render(compose(spec), 48000, style=spec.style, roles={p.name: str(p.role) for p in spec.parts},
                   bars=spec.bars, isolate=False)
    mix = np.asarray(stems.mix)
    quarter = len(mix) // 4
    meter = pyloudnorm.Meter(48000)
    change = meter.integrated_loudness(mix[-quarter:]) - meter.integrated_loudness(mix[:quarter])
    assert sign * change >= MIN_CHANGE_LU, f"{spec.arc}: {change:+.1f} LU from the first quarter to the last"
