"""Score -> Stems: instruments and the mix."""
