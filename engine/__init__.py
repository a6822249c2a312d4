"""Cadenza's engine: understand a prompt, compose a clip, serve both over gRPC."""
