"""Training: the corpus, examples drawn from it and the training loop (`cadenza train`)."""
