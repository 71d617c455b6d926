"""Stage ``training`` (models): the two-tower retriever, the DCN-v2 ranker and its
sequence-aware twin, the item similarity, the light ranker, their evaluation and the promotion
gate. Bodies unpack config and resources and call ``recassets.training``."""

# No `from __future__ import annotations`: Dagster 1.13 reads the `context` annotation at
# definition time and rejects it as a string.
import dataclasses
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field, field_validator

from assets import keys
from assets.pods import GPU_POD
from resources import LakeResource

# recassets.training is imported inside the bodies: it loads torch and torchrec (about 11 s),
# and every run process, the daemon and the code server import this module to learn
# the definitions; only the steps that train or serve need torch
# (tests/unit/test_layering.py checks that the definitions load without it).

GROUP = "training"


class ModelTrainConfig(Config):
    """Incremental by default: warm start from the latest checkpoint, one pass over the
    partitions it has not consumed. The last ``holdout_days`` partitions are kept for
    ``model_evaluation``; unset (None), as many of the newest as hold 300 users with a
    positive, 1 to 28 and at most a quarter of the days (``examples.choose_holdout``: one day
    on a dense stream, a few weeks on a sparse history)."""

    # Bounds on every number: a value outside them is refused naming the field before any
    # work (pydantic, when Dagster builds the config), not read as a slice (a negative
    # holdout trained on the evaluation's day) or a silent default.
    full_retrain: bool = Field(
        default=False,
        description="Train from scratch instead of warm-starting from the served checkpoint "
        "(the latest while no learned model serves), which makes one pass over the partitions "
        "it has not consumed.",
    )
    epochs_from_scratch: int = Field(
        default=3,
        ge=1,
        description="Passes over the training days when training from scratch (full_retrain, "
        "or no checkpoint yet).",
    )
    holdout_days: int | None = Field(
        default=None,
        ge=0,
        description="The newest training_examples days kept for model_evaluation. Unset: as "
        "many of the newest as hold 300 users with a positive, 1 to 28 and at most a quarter "
        "of the days.",
    )
    batch_size: int = Field(default=1024, ge=1, description="Examples per training step.")
    id_capacity: int = Field(
        default=100_000, ge=1, description="Rows of the user_id and item_id embedding tables."
    )
    id_min_count: int = Field(
        default=2, ge=1, description="Sightings of an id before it gets its own embedding row."
    )
    num_threads: int | None = Field(
        default=None, ge=1, description="torch threads while training. Unset: torch's default."
    )
    processes: int | None = Field(
        default=None,
        ge=1,
        description="Local ranks of sharded training (TorchRec DMP, gloo or NCCL). Unset: the "
        "RECASSETS_TRAIN_PROCESSES environment variable, default 1 (the in-process loop).",
    )


class SequenceRankingConfig(ModelTrainConfig):
    """``ModelTrainConfig``, plus the attention's shape (from scratch only: a warm start keeps
    its checkpoint's): ``history`` newest engagements attended (the feature pipeline keeps 50),
    ``attention_hidden`` units of the attention unit."""

    history: int = Field(
        default=50,
        ge=1,
        description="Newest engagements attended (the feature pipeline keeps 50). From scratch "
        "only: a warm start keeps its checkpoint's.",
    )
    attention_hidden: int = Field(
        default=32,
        ge=1,
        description="Units of the attention unit. From scratch only: a warm start keeps its "
        "checkpoint's.",
    )


def _train(
    context: AssetExecutionContext, lake: LakeResource, config: ModelTrainConfig, kind: str
) -> MaterializeResult:
    from recassets.training import policy as P
    from recassets.training.loop import RankingTrainConfig, TrainConfig

    ids = {
        "key_type": "int64",
        "capacity": config.id_capacity,
        "min_count": config.id_min_count,
        "num_oov_buckets": max(4, config.id_capacity // 100),
        "ttl": 30,
    }
    train = TrainConfig(
        epochs=config.epochs_from_scratch,
        batch_size=config.batch_size,
        num_threads=config.num_threads,
        vocab={"user_id": ids, "item_id": ids},
    )
    if isinstance(config, SequenceRankingConfig):
        knobs = RankingTrainConfig(
            sequence=config.history, attention_hidden=config.attention_hidden
        )
        train = dataclasses.replace(train, ranking=knobs)
    from recassets.training.progress import reporting

    # the loop's passes, said as they end (and every 30 s); in this process only: sharded
    # training's workers and the k8s launcher report none (docs/training-and-the-gate.md)
    with reporting(context.log.info):
        result = P.train_next(
            lake.paths(),
            kind,
            train,
            full_retrain=config.full_retrain,
            holdout_days=config.holdout_days,
            processes=config.processes,
        )
    ckpt = result.checkpoint
    m = ckpt.metrics
    vocab = m.get("vocab", {})
    context.log.info(
        f"{kind}: {'new version' if result.new_version else 'up to date'} {result.path}"
    )
    metadata: dict[str, Any] = {
        "checkpoint": MetadataValue.path(result.path),
        "new_version": result.new_version,
        "warm_start": result.warm_start,
        "partitions_this_run": MetadataValue.json(result.partitions),
        "partitions_consumed": MetadataValue.json(ckpt.partitions),
        "delta_versions": MetadataValue.json(ckpt.versions),
        "holdout_days": result.holdout.days,
        "holdout_reason": result.holdout.reason,
        "loss": float(m.get("loss", float("nan"))),
        "examples": int(m.get("examples", 0)),
        "examples_per_s": float(m.get("examples_per_s", 0.0)),
        "oov_rates": MetadataValue.json({k: v.get("oov_rate") for k, v in vocab.items()}),
        "collision_rates": MetadataValue.json(
            {k: v.get("collision_rate") for k, v in vocab.items()}
        ),
    }
    if "train_auc" in m:
        metadata["train_auc"] = float(m["train_auc"])
    return MaterializeResult(metadata=metadata)


@asset(
    key=keys.TWO_TOWER,
    group_name=GROUP,
    deps=[keys.TRAINING_EXAMPLES, keys.TRAINING_DATA],
    kinds={"pytorch"},
    # Backticks: the UI renders descriptions as Markdown, which drops `<artifacts>` as a tag.
    description="Two-tower retriever (in-batch sampled softmax with logQ) on the positives of "
    "training_examples; a new versioned checkpoint under `<artifacts>/models/two_tower/`.",
    op_tags=GPU_POD,  # its pod under dagster-k8s (assets/pods.py)
    code_version="1",
)
def two_tower_model(
    context: AssetExecutionContext, config: ModelTrainConfig, lake: LakeResource
) -> MaterializeResult:
    return _train(context, lake, config, "two_tower")


@asset(
    key=keys.RANKING,
    group_name=GROUP,
    deps=[keys.TRAINING_EXAMPLES, keys.TRAINING_DATA],
    kinds={"pytorch"},
    description="DCN-v2 ranker (BCE) on all rows of training_examples; a new versioned "
    "checkpoint under `<artifacts>/models/ranking/`.",
    op_tags=GPU_POD,  # its pod under dagster-k8s (assets/pods.py)
    code_version="1",
)
def ranking_model(
    context: AssetExecutionContext, config: ModelTrainConfig, lake: LakeResource
) -> MaterializeResult:
    return _train(context, lake, config, "ranking")


@asset(
    key=keys.SEQUENCE_RANKING,
    group_name=GROUP,
    deps=[keys.TRAINING_EXAMPLES, keys.TRAINING_DATA],
    kinds={"pytorch"},
    description="The sequence-aware ranker: the DCN-v2 with a target attention (DIN) over the "
    "user's last 50 engagements against the candidate, on all rows of training_examples; "
    "model_evaluation scores it beside the DCN-v2 and the gate serves the better; a new "
    "versioned checkpoint under `<artifacts>/models/sequence_ranking/`.",
    op_tags=GPU_POD,  # its pod under dagster-k8s (assets/pods.py)
    code_version="1",
)
def sequence_ranking_model(
    context: AssetExecutionContext, config: SequenceRankingConfig, lake: LakeResource
) -> MaterializeResult:
    return _train(context, lake, config, "sequence_ranking")


class ItemSimilarityConfig(Config):
    """EASE over the positives of the last ``window_days`` training days (the two-tower's:
    ``holdout_days`` left to the evaluation). ``l2``: its ridge weight (larger: closer to
    popularity); ``beta``: the blend's weight of the week's popularity beside the EASE score;
    each unset is chosen on the window's last 7 days (``similarity.choose_weights``);
    ``max_items``: the most engaged items it covers (its fit is cubic in them);
    ``neighbors``: weights kept per item."""

    holdout_days: int | None = Field(
        default=None,
        ge=0,
        description="The newest training days left to the evaluation. Unset: the two-tower's "
        "choice.",
    )
    window_days: int = Field(
        default=365, ge=1, description="Training days whose positives the fit reads."
    )
    l2: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="EASE's ridge weight (larger: closer to popularity). Unset: chosen on the "
        "window's last 7 days.",
    )
    beta: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="The blend's weight of the week's popularity beside the EASE score. Unset: "
        "chosen on the window's last 7 days.",
    )
    max_items: int = Field(
        default=10_000,
        ge=1,
        description="The most engaged items covered (the fit is cubic in them).",
    )
    neighbors: int = Field(default=100, ge=1, description="Weights kept per item.")


@asset(
    key=keys.SIMILARITY,
    group_name=GROUP,
    deps=[keys.TRAINING_EXAMPLES, keys.TRAINING_DATA],
    kinds={"numpy"},
    description="Item-to-item weights learned in closed form (EASE) on the positives of "
    "training_examples: the `similarity` candidate source and the blend order's main term; a "
    "new versioned file under `<artifacts>/models/item_similarity/`, and beside it co-occurrence "
    "(cosine) on the same days under `models/cooccurrence/`: what serves when nothing learned "
    "passes the gate and co-occurrence beats popularity.",
    code_version="1",
)
def item_similarity(
    context: AssetExecutionContext, config: ItemSimilarityConfig, lake: LakeResource
) -> MaterializeResult:
    from recassets.training import cooccurrence as C
    from recassets.training import similarity as S

    sim, path, new = S.train_next(
        lake.paths(), holdout_days=config.holdout_days, window_days=config.window_days,
        l2=config.l2, beta=config.beta, max_items=config.max_items,
        neighbors=config.neighbors, progress=context.log.info,
    )  # fmt: skip
    context.log.info(f"item_similarity: {'new version' if new else 'up to date'} {path}")
    # co-occurrence on the same days: what serves when nothing learned passes (policy.promote);
    # a fit that fails leaves it out of the evaluation, and never holds up the learned models
    co_path: str | None = None
    try:
        _, co_path, co_new = C.train_next(lake.paths(), sim)
        context.log.info(f"cooccurrence: {'new version' if co_new else 'up to date'} {co_path}")
    except (ValueError, OSError, MemoryError) as e:
        context.log.warning(f"cooccurrence: not fitted ({type(e).__name__}: {e}); only "
                            "popularity can serve while nothing learned passes")  # fmt: skip
    m = sim.meta
    days = m.get("partitions", [])
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(path),
            "new_version": new,
            "items": int(m.get("items", 0)),
            "users": int(m.get("users", 0)),
            "pairs": int(m.get("pairs", 0)),
            "kept_weights": len(sim.data),
            "l2": float(m.get("l2", 0.0)),
            "beta": sim.beta,
            **({"cooccurrence": MetadataValue.path(co_path)} if co_path else {}),
            "partitions": MetadataValue.json(
                {"first": days[0], "last": days[-1], "count": len(days)} if days else {}
            ),
        }
    )


class LightRankerConfig(Config):
    """The L1 light ranker (``recassets.training.light``): ``max_rows`` of the two-tower's
    training days' examples (a seeded sample), ``hidden`` units, ``epochs`` passes."""

    max_rows: int = Field(
        default=300_000,
        ge=1,
        description="Examples of the two-tower's training days it trains on (a seeded sample).",
    )
    hidden: int = Field(default=16, ge=1, description="Units of the MLP's hidden layer.")
    epochs: int = Field(default=4, ge=1, description="Passes over the sampled examples.")


@asset(
    key=keys.LIGHT,
    group_name=GROUP,
    deps=[keys.TRAINING_EXAMPLES, keys.TRAINING_DATA, keys.TWO_TOWER],
    kinds={"pytorch"},
    description="The funnel's L1 light ranker: a small MLP over the two-tower's dot product "
    "and the item counters, trained on training_examples, that keeps the best 200 of the "
    "retrieved candidates for the DCN-v2; a new versioned file under "
    "`<artifacts>/models/light_ranker/`.",
    code_version="1",
)
def light_ranker(
    context: AssetExecutionContext, config: LightRankerConfig, lake: LakeResource
) -> MaterializeResult:
    from recassets.training import light as L
    from recassets.training import policy as P

    paths = lake.paths()
    tt = P.latest_checkpoint(paths, "two_tower")
    if tt is None:
        raise ValueError("no two-tower checkpoint: materialize models/two_tower_model first")
    try:
        model, path, new = L.train_next(
            paths, tt, max_rows=config.max_rows, hidden=config.hidden, epochs=config.epochs
        )
    except L.NotEnoughData as e:
        # no cut this time: the evaluation and serving run the DCN-v2 over every candidate
        # (the light ranker is an optimisation), and the gate is not held up by it
        context.log.warning(f"light_ranker: not trained: {e}")
        return MaterializeResult(metadata={"trained": False, "reason": str(e)})
    context.log.info(f"light_ranker: {'new version' if new else 'up to date'} {path}")
    m = model.meta
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(path),
            "new_version": new,
            "two_tower": MetadataValue.path(str(m.get("two_tower"))),
            "rows": int(m.get("rows", 0)),
            "positives": int(m.get("positives", 0)),
            "holdout_auc": float(m.get("holdout_auc", float("nan"))),
            "holdout_auc_two_tower_alone": float(m.get("holdout_auc_two_tower", float("nan"))),
            "flops_per_candidate": model.flops_per_candidate(),
        }
    )


class ModelEvaluationConfig(Config):
    """``k``: the cut-off of Recall/NDCG/HitRate (NDCG@10 is reported beside). ``candidates``:
    two-tower results the ranker re-ranks (the served pair). ``bootstrap``: resamples of the
    confidence intervals (users resampled)."""

    k: int = Field(
        default=50,
        ge=1,
        description="The cut-off of Recall, NDCG and HitRate (NDCG@10 is reported beside).",
    )
    candidates: int = Field(
        default=200,
        ge=1,
        description="Two-tower results the ranker re-ranks (the pair as served).",
    )
    bootstrap: int = Field(
        default=1000,
        ge=0,
        description="Resamples (of users) of the confidence intervals; 0: no intervals (quicker).",
    )
    # A name it does not know is refused (_known_baselines): dropped, a typo would leave the
    # gate nothing to beat, and it would pass.
    gate_baselines: list[str] | None = Field(
        default=None,
        description="The baselines the promotion gate must beat, of popularity_all_time, "
        "popularity_trailing_7d and cooccurrence. Unset: all of them.",
    )
    # the cascade, as serving runs it (FunnelConfig.candidates, .light_keep)
    light_pool: int = Field(
        default=500,
        ge=1,
        description="Two-tower candidates the light ranker scores, as serving runs it.",
    )
    light_keep: int = Field(
        default=200,
        ge=1,
        description="Candidates the light ranker keeps for the DCN-v2, as serving runs it.",
    )

    @field_validator("gate_baselines")
    @classmethod
    def _known_baselines(cls, names: list[str] | None) -> list[str] | None:
        from recassets.training.report import check_baselines  # no torch: report is plain

        return None if names is None else check_baselines(names)


@asset(
    key=keys.EVALUATION,
    group_name=GROUP,
    deps=[
        keys.TWO_TOWER,
        keys.RANKING,
        keys.SEQUENCE_RANKING,
        keys.SIMILARITY,
        keys.LIGHT,
        keys.TRAINING_DATA,  # it reads the held-out days of training_examples
    ],
    kinds={"pytorch"},
    description="Recall/NDCG/HitRate@K with bootstrap intervals (exact search over the catalog, "
    "seen items excluded) of the latest two-tower alone and re-ranked by the latest ranker (the "
    "DCN-v2 and the sequence-aware one side by side: the better serves), on "
    "the held-out days after their last consumed partition (per user-day, features of the day "
    "before), beside all-time and trailing-7-day popularity, item-to-item co-occurrence and the "
    "current model; ranker AUC/log loss and AUC/NDCG of re-ranking the two-tower's candidates.",
    code_version="1",
)
def model_evaluation(
    context: AssetExecutionContext, config: ModelEvaluationConfig, lake: LakeResource
) -> MaterializeResult:
    from recassets.funnel.config import FunnelConfig
    from recassets.training import cooccurrence as C
    from recassets.training import evaluation as E
    from recassets.training import light as L
    from recassets.training import policy as P
    from recassets.training import similarity as S

    paths = lake.paths()
    tt, rk = P.latest_checkpoint(paths, "two_tower"), P.latest_checkpoint(paths, "ranking")
    sims = S.versions(paths)
    if tt is None or rk is None:
        raise ValueError(
            "no checkpoints to evaluate: materialize two_tower_model and ranking_model"
        )
    cur = P.current_policy(paths)
    model = cur.get("policy") == P.MODEL
    report = E.evaluate(
        paths, str(tt), str(rk), k=config.k,
        current_two_tower=cur["two_tower"] if model else None,
        current_ranking=cur["ranking"] if model else None,
        candidates=config.candidates, bootstrap=config.bootstrap,
        similarity=str(sims[-1]) if sims else None,
        current_similarity=cur.get("item_similarity") if model else None,
        light=L.latest_for(paths, tt),
        current_light=cur.get("light_ranker") if model else None,
        light_pool=config.light_pool, light_keep=config.light_keep,
        # the blend's page as serving's default rules make it (the category cap), for what
        # they cost: candidate_blend+served_rules beside candidate_blend
        rules={"served_rules": FunnelConfig()},
        # the sequence-aware L2 beside the DCN-v2: the better one serves (report.ranker)
        sequence_ranking=P.latest_checkpoint(paths, P.SEQUENCE_RANKING),
        # co-occurrence as it would serve: the simple method served when nothing learned passes
        cooccurrence=C.fit_of(paths, str(sims[-1]) if sims else None),
    )  # fmt: skip
    report.gate_baselines = config.gate_baselines
    saved = report.save(P.evaluation_path(paths))
    served = report.retrieval[report.served_key]
    metadata: dict[str, Any] = {
        "metrics": MetadataValue.md(report.to_markdown()),
        "eval_days": MetadataValue.json(report.eval_days),
        "retrieval": MetadataValue.json(report.retrieval),
        "ranking": MetadataValue.json(report.ranking),
        "reranking": MetadataValue.json(report.reranking),
        report.recall_key: float(served[report.recall_key]),
        report.ndcg_key: float(served[report.ndcg_key]),
        "users": int(served.get("users", 0)),
        "user_days": int(served.get("user_days", 0)),
        "evaluation": MetadataValue.path(saved),
        "order": str(report.order),
        "order_reason": report.order_reason,
        "ranker": str(report.ranker),
        "ranker_reason": report.ranker_reason,
    }
    if E.CANDIDATE in report.ranking:
        metadata["auc"] = float(report.ranking[E.CANDIDATE]["auc"])
    return MaterializeResult(metadata=metadata)


@asset_check(
    asset=keys.EVALUATION,
    blocking=True,
    description="Promote the evaluated checkpoints when the served pair (two-tower + ranker) "
    "beats every simple baseline (all-time and trailing popularity, item-to-item co-occurrence) "
    "on Recall@K and NDCG@10 (where the two disagree: on the paired differences, ahead beyond "
    "the 95 % interval on one and behind beyond it on neither) and is within 0.02 Recall@K of "
    "the current model; otherwise fail "
    "and keep serving the current policy, or, while nothing learned serves or once the current "
    "model falls below popularity (behind it beyond the 95 % interval on one metric, ahead "
    "beyond it on neither), serve the best simple method: co-occurrence when it beats "
    "popularity as it would serve, else popularity. A served model taken down is named in the "
    "result's description and its `replaced` metadata.",
)
def model_evaluation_promotion_gate(lake: LakeResource) -> AssetCheckResult:
    from recassets.training import evaluation as E
    from recassets.training import policy as P

    paths = lake.paths()
    report = E.EvaluationReport.load(P.evaluation_path(paths))
    decision = P.promote(paths, report)
    policy = P.current_policy(paths)
    return AssetCheckResult(
        passed=decision.passed,
        severity=AssetCheckSeverity.ERROR,
        # a demotion changes what serves: said where the UI shows the result first
        description=decision.replaced or None,
        metadata={
            "reasons": MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons)),
            "promoted": decision.passed,
            **({"replaced": decision.replaced} if decision.replaced else {}),
            "serving_policy": MetadataValue.json(
                {k: v for k, v in policy.items() if k != "evaluation"}
            ),
        },
    )


ASSETS = [
    two_tower_model,
    ranking_model,
    sequence_ranking_model,
    item_similarity,
    light_ranker,
    model_evaluation,
]
CHECKS = [model_evaluation_promotion_gate]
