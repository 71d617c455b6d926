"""Training datasets, the trainer, evaluation and the promotion gate."""
