"""Understand: prompt text + overrides -> MusicSpec, every field with its source."""
