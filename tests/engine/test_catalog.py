"""The catalogue's files agree: a style named in one file exists in the others, so nothing falls back silently."""
from __future__ import annotations

import pytest

from engine.catalog import styles
from engine.errors import SpecError
from engine.model.generator import style_map, style_settings
from plugin_host import effects


def test_every_catalogue_style_has_model_settings() -> None:
    missing = sorted(set(styles.catalogue()) - set(style_map()))
    assert not missing, f"styles.toml styles without a [style_map] entry in model.toml: {missing}"


def test_model_settings_name_only_catalogue_styles() -> None:
    orphans = sorted(set(style_map()) - set(styles.catalogue()) - {"default"})
    assert not orphans, f"model.toml [style_map] entries for styles styles.toml lacks: {orphans}"


def test_effect_chains_name_only_catalogue_styles() -> None:
    orphans = sorted(set(effects.styles()) - set(styles.catalogue()))
    assert not orphans, f"effects.toml [style.*] entries for styles styles.toml lacks: {orphans}"


def test_a_style_without_model_settings_is_an_error_naming_the_file() -> None:
    with pytest.raises(SpecError, match="no \\[style_map\\] entry in engine/catalog/data/model.toml"):
        style_settings("not a style")
