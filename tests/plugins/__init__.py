"""Cadenza's own VST3 test plug-ins (C++ source compiled here; see build.py)."""
