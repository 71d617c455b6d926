"""Retrieval and ranking models over TorchRec, with their losses kept apart.

- ``two_tower``: user and item towers for ANN retrieval (Yi et al. 2019).
- ``ranking``: DCN-v2 heavy ranker (Wang et al. 2021), with a broadcast serving form.
- ``sequence``: target attention over the user's engagements (DIN), the sequence-aware ranker's.
- ``losses``: in-batch sampled softmax with logQ correction; pointwise BCE.
- ``embeddings``: the embedding tables and their (fused) row optimizer.

Training loops live in ``recassets.training.loop`` (inference: ``recassets.training.inference``).
"""

from recassets.models.embeddings import EMBEDDING_OPTIMIZERS, EmbeddingTables, TableSpec
from recassets.models.inputs import ModelInputs, signed_log1p
from recassets.models.losses import PointwiseBCELoss, SampledSoftmaxLoss
from recassets.models.ranking import DCNv2, PreparedItems, RankingConfig
from recassets.models.sequence import TargetAttention
from recassets.models.two_tower import Tower, TwoTower, TwoTowerConfig

__all__ = [
    "EMBEDDING_OPTIMIZERS",
    "DCNv2",
    "EmbeddingTables",
    "ModelInputs",
    "PointwiseBCELoss",
    "PreparedItems",
    "RankingConfig",
    "SampledSoftmaxLoss",
    "TableSpec",
    "TargetAttention",
    "Tower",
    "TwoTower",
    "TwoTowerConfig",
    "signed_log1p",
]
