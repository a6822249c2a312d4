"""Everything DAW-facing: the CLI, the engine client, files placed into projects."""
