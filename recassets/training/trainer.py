"""The former single training module, now split (this file only re-exports):

- ``recassets.training.checkpoint``: the checkpoint file (``Checkpoint``, ``as_checkpoint``);
- ``recassets.training.loop``: training (``TrainConfig``, ``train_two_tower``, ``train_ranking``);
- ``recassets.training.inference``: loading, embedding, scoring (what serving needs).
"""

# Kept while recassets/serving is re-pointed to recassets.training.inference and
# recassets.training.checkpoint; to be removed. Importing it still imports the training loop.
from recassets.training.checkpoint import Checkpoint, as_checkpoint
from recassets.training.inference import (
    evaluate_ranking,
    item_embeddings,
    load_ranking,
    load_two_tower,
    resolve_device,
    score_candidates,
    user_embeddings,
)
from recassets.training.loop import (
    DEFAULT_VOCAB,
    TrainConfig,
    build_vocab,
    train_ranking,
    train_two_tower,
)

__all__ = [
    "DEFAULT_VOCAB",
    "Checkpoint",
    "TrainConfig",
    "as_checkpoint",
    "build_vocab",
    "evaluate_ranking",
    "item_embeddings",
    "load_ranking",
    "load_two_tower",
    "resolve_device",
    "score_candidates",
    "train_ranking",
    "train_two_tower",
    "user_embeddings",
]
