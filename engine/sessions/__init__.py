"""Co-creation sessions: takes, verdicts, the taste model, and the stores that keep them."""
