"""The tiny training setup the loop, inference and evaluation tests share: planted days, a
vocabulary where every id gets a row, and a two-tower small enough to train in seconds."""

from __future__ import annotations

from recassets.training.loop import TrainConfig, TwoTowerTrainConfig
from support import planted

N_CATEGORIES = 4
DAYS = [planted.day(i) for i in range(4)]  # days 0-2 train, day 3 held out
# Small tables: every id gets a row (min_count 1) with room to spare.
_IDS = {"key_type": "int64", "num_oov_buckets": 4, "min_count": 1, "ttl": 30}
VOCAB = {"user_id": {**_IDS, "capacity": 64}, "item_id": {**_IDS, "capacity": 160}}
TINY = TrainConfig(
    batch_size=64,
    lr=3e-3,
    embedding_lr=0.1,
    vocab=VOCAB,
    # the planted world's preference is a function of the user id alone (no history): the
    # tiny models need the user-id row (the default too, stated here on purpose)
    two_tower=TwoTowerTrainConfig(dim=16, hidden=(32,), temperature=0.1, user_id=True),
)
