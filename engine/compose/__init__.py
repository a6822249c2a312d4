"""Compose: MusicSpec -> Score, and the operations on a clip (vary, infill, continue, accompany, rearrange)."""
