"""Cadenza's engine: understand a prompt, compose a clip, serve both over gRPC.

`engine.generate(prompt, **overrides) -> Clip` is the one call for a notebook or a script (see
engine/api.py); the packages follow the flow: music (types, torch-free) -> catalog -> understand
-> model -> compose, with training, sessions, evaluation and serving beside them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.api import Clip, generate

__all__ = ["Clip", "generate"]


def __getattr__(name: str) -> Any:
    """`engine.generate` and `engine.Clip`, imported on first use so `import engine` stays light."""
    if name in __all__:
        from engine import api

        return getattr(api, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
