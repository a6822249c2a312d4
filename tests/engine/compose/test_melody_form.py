"""A melody's rhythm follows the form (engine/compose/form.py): a bar inside a phrase answers the bar
before it with another rhythm; where the corpus model writes the melody, a returning section opens with
its motif whole, the motif comes back varied inside a phrase (its head kept, its tail new), and a
phrase's last bar arrives on a long note. Read from composed clips (the committed checkpoints), bar by
bar, as the eval reads them."""
from __future__ import annotations

from engine.api import generate
from engine.compose import form
from engine.compose.pipeline import line_role
from engine.music.theory import Key

SEEDS = range(6)


def _melody(prompt: str, seed: int):
    """The clip, its melody track, and the melody's onsets per bar in sixteenth steps (as eval reads them)."""
    clip = generate(prompt, seed=seed)
    spec, score = clip.spec, clip.score
    name = next(p.name for p in spec.parts if line_role(spec, p) == "melody")
    track = next(t for t in score.tracks if t.name == name)
    step = score.ticks_per_quarter // 4
    bar = round(spec.meter.quarters_per_bar * score.ticks_per_quarter)
    onsets = [set() for _ in range(spec.bars)]
    for n in track.notes:
        b, within = divmod(round(n.time / step) * step, bar)
        if b < spec.bars:
            onsets[b].add(within // step)
    return clip, track, bar, step, onsets


def _phrase_repeats(prompt: str) -> tuple[int, int]:
    """(bars inside a phrase that play the rhythm of the bar before, such bars) over SEEDS."""
    repeats = pairs = 0
    for seed in SEEDS:
        clip, _, _, _, onsets = _melody(prompt, seed)
        clip_form = form.plan(clip.spec.bars, clip.spec.key, [(1, 4, 5, 1)], clip.spec.seed, loop=False)
        for b, fb in enumerate(clip_form.bars):
            if fb.position > 0 and onsets[b] and onsets[b - 1]:
                pairs += 1
                repeats += onsets[b] == onsets[b - 1]
    return repeats, pairs


def test_the_form_names_the_bars_that_answer_return_and_cadence() -> None:
    song = form.plan(8, Key("C", "major"), [(1, 4, 5, 1), (6, 4, 5, 5)], seed=3, loop=False)
    assert song.cadences == (3, 7)
    # the motif inside the first phrase comes back varied, the second phrase opens with it whole
    assert set(song.returns) == {(2, 0, False), (4, 0, True)}
    assert {(b, b - 1) for b in (1, 2, 3, 5, 6, 7)} <= set(song.contrasts)
    assert (4, 3) not in song.contrasts  # a phrase's first bar may repeat the cadence before it
    assert (2, 0) in song.contrasts and (4, 0) not in song.contrasts
    loop = form.plan(8, Key("C", "major"), [(1, 4, 5, 1)], seed=3, loop=True)
    assert loop.cadences == (3,)  # a loop's last bar turns round into its first, it does not close


def test_a_corpus_melody_arrives_on_a_long_note_at_every_phrase_end() -> None:
    # on main the chorale soprano ran in quarters through 17 of these 18 phrase ends
    for seed in SEEDS:
        clip, track, bar, step, _ = _melody("Solo cello lament in C minor, 12 bars", seed)
        assert clip.spec.meter.numerator == 4
        for end in (3, 7, 11):
            start = end * bar
            notes = [n for n in track.notes if start - step // 2 <= n.time < start + bar - step // 2]
            if not notes:
                continue  # a note held over the bar line from the bar before: long already
            last = max(notes, key=lambda n: n.time)
            assert last.time - start <= bar // 2 + step // 2, (seed, end)  # arrives by the third beat
            assert last.time + last.duration >= start + bar - step // 2, (seed, end)  # and holds to the bar's end
        closing = [n for n in track.notes if n.time >= 11 * bar - step // 2]
        assert len(closing) == 1, seed  # the lament ends on one note held through its last bar


def test_a_corpus_melody_does_not_play_one_rhythm_bar_after_bar() -> None:
    # on main the waltz's violin (3/4) repeated the bar before in 8 of 36 such bars, a sparse folk tune in 13 of
    # 36; a bar is drawn again a few times (ANSWER_REDRAWS), so a sparse tune may keep a repeat now and then
    for prompt in ("Viennese waltz for string quartet in Eb major", "Folk tune on flute in D major, 8 bars"):
        repeats, pairs = _phrase_repeats(prompt)
        assert pairs >= 30
        assert repeats <= pairs // 6, prompt


def test_a_corpus_motif_comes_back_varied_inside_a_phrase_and_whole_where_the_section_returns() -> None:
    kept = varied = whole = 0
    for seed in SEEDS:
        _, _, bar, step, onsets = _melody("Solo cello lament in C minor, 12 bars", seed)
        middle = bar // step // 2
        head = {s for s in onsets[0] if s < middle}
        kept += {s for s in onsets[2] if s < middle} == head  # bar 3 brings back bar 1's first half
        varied += onsets[2] != onsets[0]  # and goes on differently
        whole += onsets[4] == onsets[0]  # the second phrase (A again) opens with bar 1's rhythm
    assert kept >= len(SEEDS) - 1
    assert varied >= len(SEEDS) - 1
    assert whole >= len(SEEDS) - 1


def test_a_part_model_lead_answers_the_bar_before_and_keeps_its_motif() -> None:
    # on main the chiptune lead repeated the bar before in 5 of 36 bars inside a phrase
    prompt = "Chiptune level theme, square wave lead and synth bass, 150 BPM, B minor, 8 bars"
    repeats, pairs = _phrase_repeats(prompt)
    assert pairs >= 30
    assert repeats <= 1
    for seed in SEEDS:  # the part model restates the motif's rhythm whole in the phrase's third bar
        _, _, _, _, onsets = _melody(prompt, seed)
        assert onsets[2] == onsets[0], seed
