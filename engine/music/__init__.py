"""Music as data, torch-free: theory, the spec, notes, MIDI bytes and analysis."""
