"""Everything that imports torch: the token vocabulary, the transformer, constrained decoding, the generator."""
