"""What happens past the clip's last bar: cut it, let it ring, or wrap it onto the start for a loop.

Every stem is rendered ``clip_frames + tail`` long (notes release, reverbs and echoes decay),
then one policy makes all stems the same length again:
- ``cut``: exactly the clip, with a short fade at the end;
- ``ring``: the clip plus the tail, up to where every stem has decayed under the floor;
- ``loop``: exactly the clip, the tail added onto its start, so playing it in a loop is seamless.
"""
from __future__ import annotations

import numpy as np

from plugin_host.config import FADE_SECONDS, TAIL_FLOOR_DB, TAIL_MAX_SECONDS, TAIL_POLICIES


def check_policy(policy: str) -> str:
    if policy not in TAIL_POLICIES:
        raise ValueError(f"tail must be one of {', '.join(TAIL_POLICIES)}, got {policy!r}")
    return policy


def stem_by_stem(policy: str) -> bool:
    """Whether ``policy`` makes each stem's length from its own samples alone (``ring`` looks at them all)."""
    return check_policy(policy) != "ring"


def tail_frames(policy: str, sample_rate: int) -> int:
    """How far past the clip each stem must be rendered for ``policy``."""
    return 0 if check_policy(policy) == "cut" else round(TAIL_MAX_SECONDS * sample_rate)


def _fade_out(audio: np.ndarray, frames: int) -> None:
    frames = min(frames, audio.shape[0])
    if frames:
        audio[-frames:] *= np.linspace(1.0, 0.0, frames, dtype=np.float32)[:, None]


def ring_length(parts: dict[str, np.ndarray], clip_frames: int) -> int:
    """Clip length plus the tail up to the last sample any stem has above TAIL_FLOOR_DB of the loudest."""
    if not parts:
        return clip_frames
    stacked = np.max([np.abs(a).max(axis=1) for a in parts.values()], axis=0)
    peak = float(stacked.max())
    if peak == 0.0:
        return clip_frames
    loud = np.nonzero(stacked[clip_frames:] > peak * 10 ** (TAIL_FLOOR_DB / 20))[0]
    return clip_frames + (int(loud[-1]) + 1 if loud.size else 0)


def apply_tail(parts: dict[str, np.ndarray], clip_frames: int, policy: str, sample_rate: int) -> dict[str, np.ndarray]:
    """Every stem made the policy's length (all equal); the input buffers are not changed."""
    check_policy(policy)
    fade = round(FADE_SECONDS * sample_rate)
    if policy == "loop":
        out = {}
        for name, audio in parts.items():
            looped = audio[:clip_frames].copy()
            for start in range(clip_frames, audio.shape[0], clip_frames):  # a tail longer than the clip wraps again
                segment = audio[start:start + clip_frames]
                looped[:len(segment)] += segment
            out[name] = looped
        return out
    length = clip_frames if policy == "cut" else ring_length(parts, clip_frames) + fade
    out = {}
    for name, audio in parts.items():
        stem = np.zeros((length, audio.shape[1]), dtype=np.float32)
        stem[:min(length, audio.shape[0])] = audio[:length]
        _fade_out(stem, fade)
        out[name] = stem
    return out
