"""The evaluation's reference set (reference.json.gz)."""
