"""The model's side of the catalogue (engine/catalog/data/model.toml): style tokens, corpus, decoding."""
from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def model_data() -> dict:
    """engine/catalog/data/model.toml, parsed."""
    return tomllib.loads(resources.files("engine.catalog.data").joinpath("model.toml").read_text())
