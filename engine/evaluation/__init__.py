"""Evaluation: control accuracy, musicality metrics against a held-out reference, and the report."""
