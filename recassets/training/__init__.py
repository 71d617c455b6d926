"""Training: examples, datasets, the loop (loop.py), checkpoints, inference (what serving loads), evaluation and the promotion gate."""
