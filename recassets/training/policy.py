"""The model store, the promotion gate and the current serving policy.

Layout under ``<artifacts>/models/``::

    two_tower/0001.pt, 0002.pt, ...   versioned checkpoints, never overwritten
    ranking/0001.pt, ...              the DCN-v2
    sequence_ranking/0001.pt, ...     the sequence-aware DCN-v2 (a "ranking" checkpoint whose
                                      model attends to the user's engagements)
    item_similarity/0001.npz, ...     EASE, the blend's main term (``similarity``)
    cooccurrence/0001.npz, ...        co-occurrence as it serves (``cooccurrence.train_next``)
    evaluation/latest.json            the last ``EvaluationReport`` (read by the gate check)
    current.json                      the pointer serving reads (written atomically)

``current.json`` is either ``{"policy": "model", "two_tower": path, "ranking": path,
"evaluation": {...}, "promoted_at": ...}`` or, while no model ever passed the gate,
``{"policy": "popularity", "variant": "all_time" | "trailing_7d"}``. A missing file means
popularity (trailing 7 days: fresher than all-time on a stream with churn).

The gate (``gate``): a candidate is promoted only when what it would serve (two-tower + ranker)
beats every simple baseline (all-time and trailing popularity, item-to-item co-occurrence) on
Recall@K and NDCG@10, and its Recall@K is not below the current model's by more than
``tolerance`` (absolute, on the same window: ``evaluate`` scores the current model beside the
candidate). A failed gate leaves
the pointer alone, so the previous model keeps serving, unless the simple methods now beat it
beyond noise (``promote``, ``demotion``). The next training continues the served checkpoint
(``training_base``), so a refused candidate's days are trained again with the next ones.
While nothing learned passes, the best simple method that can serve does: co-occurrence
(``"fallback": "cooccurrence"``, the blend order over its cosine file) when it beats both
popularities as it would serve, else popularity.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recassets.paths import Paths
from recassets.training.checkpoint import Checkpoint, DamagedArtifactError
from recassets.training.demotion import MIN_GATE_USERS, outscored_by_popularity, replaced_by
from recassets.training.evaluation import (
    COOCCURRENCE_SERVED,
    CURRENT,
    POPULARITY_ALL_TIME,
    POPULARITY_TRAILING_7D,
    EvaluationReport,
    available_days,
    write_json_atomic,
)
from recassets.training.examples import Holdout, choose_holdout

if TYPE_CHECKING:
    from recassets.training.loop import TrainConfig

# The pointer's models (``current.json``'s keys: the retriever and the L2 ranker that serves).
KINDS = ("two_tower", "ranking")
# The model stores (folders under models/): the pointer's kinds and the sequence-aware ranker,
# whose checkpoints the pointer names as its ``ranking`` when the gate chose it.
SEQUENCE_RANKING = "sequence_ranking"
STORES = (*KINDS, SEQUENCE_RANKING)
# the model each store holds (the checkpoint's ``kind``): both rankers are DCN-v2 modules
MODULE_KIND = {"two_tower": "two_tower", "ranking": "ranking", SEQUENCE_RANKING: "ranking"}
POPULARITY = "popularity"
MODEL = "model"
# every key of the pointer that names a model file
POINTER_FILES = (*KINDS, "item_similarity", "light_ranker")
# the promoted evaluation's checkpoints of the candidate (never the model it replaced)
EVALUATED_BESIDE = ("candidate_ranking_dcn_v2", "candidate_ranking_sequence")
DEFAULT_POLICY: dict[str, Any] = {"policy": POPULARITY, "variant": "trailing_7d"}
_VERSION = re.compile(r"^(\d{4,})\.pt$")


# --- the model store ----------------------------------------------------------------------------


def models_dir(paths: Paths) -> Path:
    return Path(paths.artifacts) / "models"


def checkpoint_versions(paths: Paths, kind: str) -> list[Path]:
    """Saved checkpoints of ``kind``, oldest first."""
    folder = models_dir(paths) / kind
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _VERSION.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(paths: Paths, kind: str) -> Path | None:
    versions = checkpoint_versions(paths, kind)
    return versions[-1] if versions else None


def training_base(paths: Paths, kind: str) -> Path | None:
    """The checkpoint the next training of ``kind`` continues (warm start), whose unconsumed
    days are the ones it trains on; None when the store is empty.

    While a learned model serves (``current.json`` names one, co-occurrence's fallback aside):
    the served checkpoint of this store, the pointer's own file or the one its promotion
    evaluated beside it (the DCN-v2 while the sequence-aware ranker serves, and the other way
    round). A refused candidate is then no base, and its days stay pending: they are trained
    again, from the served weights, with the next new day. Before (2026-12-07) the latest
    checkpoint was the base: a refused one counted its days as trained, the retrain sensor went
    quiet while the served model fell behind, and every later candidate grew out of the refused
    weights until someone ran a full retrain.

    While nothing learned serves (none ever passed, co-occurrence or popularity serves, or the
    served model was taken down: ``demotion``): the latest checkpoint, which has seen the most
    days; no learned weights are known better than others then."""
    policy = current_policy(paths)
    if policy.get("policy") == MODEL and policy.get("fallback") != COOCCURRENCE_POLICY:
        evaluated = (policy.get("evaluation") or {}).get("checkpoints") or {}
        named = [policy.get(k) for k in KINDS] + [evaluated.get(k) for k in EVALUATED_BESIDE]
        for recorded in named:
            if isinstance(recorded, str) and Path(recorded).parent.name == kind:
                served = Path(in_home(paths, recorded))
                if served.is_file():
                    return served
    return latest_checkpoint(paths, kind)


def next_checkpoint_path(paths: Paths, kind: str) -> Path:
    versions = checkpoint_versions(paths, kind)
    n = int(_VERSION.match(versions[-1].name).group(1)) + 1 if versions else 1  # type: ignore[union-attr]
    return models_dir(paths) / kind / f"{n:04d}.pt"


@dataclass
class TrainResult:
    """One training run of the store: the checkpoint and whether a new version was written."""

    checkpoint: Checkpoint
    path: str
    new_version: bool
    warm_start: bool
    partitions: list[str]  # consumed by this run
    holdout: Holdout  # the newest days left to the evaluation, and why


def train_next(
    paths: Paths,
    kind: str,
    config: TrainConfig,
    *,
    full_retrain: bool = False,
    holdout_days: int | None = None,
    processes: int | None = None,
) -> TrainResult:
    """Train ``kind`` on the ``training_examples`` partitions its base (``training_base``: the
    served checkpoint while a learned model serves, else the latest) has not consumed (warm
    start, one pass), or on all of them from scratch (``config.epochs`` passes) when there is
    none or ``full_retrain``. The last ``holdout_days`` partitions are left out,
    so that ``evaluate`` has days after the last consumed one; None: as many of the newest as
    hold enough users to decide on (``examples.choose_holdout``). A new versioned file is written
    only when something was trained. ``processes`` > 1 (default ``RECASSETS_TRAIN_PROCESSES``,
    else 1): sharded over that many local ranks (``recassets.training.distributed``), the same
    checkpoint format; ``RECASSETS_TRAIN_LAUNCHER=k8s``: over the pods of a Kubernetes Job
    instead (``recassets.training.k8s_job``; ``RECASSETS_TRAIN_NODES`` of them)."""
    # The loop is imported here, where it trains: serving reads the pointer through this module
    # and must not load the training loop (recassets.training.inference's promise).
    from recassets.training import distributed, k8s_job
    from recassets.training.loop import train

    n = distributed.processes_from_env() if processes is None else processes
    fit: Callable[..., Checkpoint] = (
        functools.partial(distributed.train_distributed, processes=n) if n > 1 else train
    )
    if k8s_job.launcher_from_env() == "k8s":  # RECASSETS_TRAIN_LAUNCHER: ranks are a Job's pods
        shared = Path(paths.artifacts) / "training-jobs"  # the run folder, on the shared volume
        fit = functools.partial(k8s_job.train_on_cluster, shared_dir=shared)

    if kind not in STORES:
        raise ValueError(f"unknown model kind {kind!r}")
    if kind == SEQUENCE_RANKING and not config.ranking.sequence:
        # the store's models attend to the history: the feature pipeline's whole sequence
        from recassets.training.data import HISTORY_LIMIT

        config = replace(config, ranking=replace(config.ranking, sequence=HISTORY_LIMIT))
    days = available_days(paths)
    holdout = choose_holdout(paths, holdout_days)
    train_days = days[: len(days) - holdout.days] if holdout.days else days
    if not train_days:
        raise ValueError(
            f"no training partitions: {len(days)} day(s) available, {holdout.days} held out"
        )
    base = None if full_retrain else training_base(paths, kind)
    prior = Checkpoint.load(base) if base is not None else None
    todo = [d for d in train_days if prior is None or d not in set(prior.partitions)]
    if prior is not None and not todo:
        return TrainResult(prior, str(base), False, True, [], holdout)
    ckpt = fit(
        MODULE_KIND[kind],
        paths.table("training_examples"),
        train_days,
        config,
        checkpoint=prior,
        output=None,
        full_retrain=full_retrain,
    )
    # a ranker's rows all negative (a history rated below the threshold throughout): it
    # would learn "nothing is ever engaged", and its AUC is NaN. No version of that either.
    one_class = bool(ckpt.metrics.get("examples")) and ckpt.metrics.get("train_positives") == 0
    if not ckpt.metrics.get("examples") or one_class:  # nothing to learn from: no version
        if prior is None:
            from recassets.training.heldout import nothing_learned

            held = days[len(train_days) :]
            raise ValueError(nothing_learned(paths, kind, MODULE_KIND[kind], ckpt.metrics, todo, held))  # fmt: skip
        return TrainResult(prior, str(base), False, True, [], holdout)  # a quiet day
    return TrainResult(
        ckpt, save_new_version(paths, kind, ckpt), True, prior is not None, todo, holdout
    )


def save_new_version(paths: Paths, kind: str, ckpt: Checkpoint) -> str:
    """Save ``ckpt`` as the next version of ``kind``, created exclusively: two trainings that
    finish together take two numbers, and neither can overwrite a version (least of all the
    one ``current.json`` points at)."""
    while True:
        out = next_checkpoint_path(paths, kind)
        try:
            return ckpt.save(out, exclusive=True)
        except FileExistsError:
            continue  # another training created this number meanwhile: take the next


# --- the pointer --------------------------------------------------------------------------------


def pointer_path(paths: Paths) -> Path:
    return models_dir(paths) / "current.json"


def evaluation_path(paths: Paths) -> Path:
    return models_dir(paths) / "evaluation" / "latest.json"


def in_home(paths: Paths, recorded: str) -> str:
    """A model file's path as recorded (absolute, by the home that wrote it), read in this
    home: a path into another home's ``models/<store>/<file>`` whose copy this home holds is
    this home's copy. A home copied or moved (a laptop's onto a cluster volume, a backup
    restored elsewhere) then serves, bundles and indexes its own files, never the original
    home's, which may be gone or, worse, still there and since changed. Anything else is
    returned as recorded (a missing file is then named by whoever opens it)."""
    p, here = Path(recorded), models_dir(paths)
    if not p.is_absolute() or p.is_relative_to(here) or p.parent.parent.name != "models":
        return recorded
    mine = here / p.parent.name / p.name
    return str(mine) if mine.is_file() else recorded


def current_policy(paths: Paths) -> dict[str, Any]:
    """What serves now: the pointer's content (its model paths read in this home:
    ``in_home``), or the popularity default when there is none."""
    p = pointer_path(paths)
    if not p.exists():
        return dict(DEFAULT_POLICY)
    try:
        policy = json.loads(p.read_text())
        if not isinstance(policy, dict):
            raise ValueError(f"holds a {type(policy).__name__}, not the policy's object")
    except ValueError as e:  # the pointer is written atomically: this is damage, not a race
        raise DamagedArtifactError(
            f"the serving policy {p} is damaged ({e}): restore it, or delete it to serve "
            "popularity until the gate promotes a model again"
        ) from e
    for key in POINTER_FILES:
        if isinstance(policy.get(key), str):
            policy[key] = in_home(paths, policy[key])
    return policy


def write_policy(paths: Paths, policy: Mapping[str, Any]) -> str:
    return write_json_atomic(pointer_path(paths), dict(policy))


# --- the gate -----------------------------------------------------------------------------------


@dataclass
class GateDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    metric: str = "recall@50"
    metrics: list[str] = field(default_factory=list)  # every metric the decision compared
    # set by ``promote`` when it took the served learned model down: what serves now and why
    replaced: str = ""


def gate(
    candidate_metrics: Mapping[str, float],
    baselines: Mapping[str, Mapping[str, float]],
    current_metrics: Mapping[str, float] | None = None,
    tolerance: float = 0.02,
    *,
    metric: str | None = None,
    also: Sequence[str] = (),
    min_users: int = MIN_GATE_USERS,
    paired: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> GateDecision:
    """Pass when the candidate beats every baseline (the best simple method, not only
    popularity), ``candidate[metric]`` is not below ``current[metric] - tolerance``, and the
    evaluation counted at least ``min_users`` users (where it says how many).
    ``metric``: default the ``recall@K`` key of the candidate.

    Beating a baseline: ahead of it on ``metric`` and on each metric of ``also`` (point
    estimates), or, where the point estimates disagree, by the paired differences on the same
    units (``paired[baseline][m]``: mean, lo, hi of candidate minus baseline,
    ``units.paired_gains``): ahead beyond the 95 % interval on at least one metric and behind
    beyond it on none. Why: with two metrics and three baselines, a candidate level with one
    baseline on one metric is refused on a coin flip; on the synthetic freshness loop a blend
    25 % ahead of co-occurrence on NDCG@10 and 0.001 behind on Recall@50 (its side-by-side
    interval +-0.035) was refused, and a weaker method served. A loss the data can tell apart from
    noise still refuses, and so does a gain it cannot."""
    key = metric or next((m for m in candidate_metrics if m.startswith("recall@")), "recall@50")
    keys = [key, *[m for m in also if m != key and m in candidate_metrics]]
    reasons: list[str] = []
    cand = float(candidate_metrics[key])
    if cand != cand:  # NaN: one line, not a NaN comparison per baseline
        why = "no evaluation users: no user has new positives in the held-out days"
        return GateDecision(False, [f"{why}; nothing to decide"], key, keys)
    passed = True
    if not baselines:  # nothing beaten is no pass: the gate exists to beat the simple methods
        passed = False
        reasons.append("no baseline to beat")
    users = candidate_metrics.get("users")
    if users is not None and users == users:
        reasons.append(
            f"decided on {int(users)} users ({int(candidate_metrics.get('user_days', users))} "
            "user-days)"
        )
        if users < min_users:  # a difference on a handful of users is noise, not a decision
            passed = False
            reasons.append(
                f"too few users to decide: {int(users)} < {min_users} (hold out more days: "
                "the models' holdout_days; unset, it grows to 28 days on a long history)"
            )
    for name, b in baselines.items():
        behind = [m for m in keys if m in b and not float(candidate_metrics[m]) > float(b[m])]
        verdict = _paired_verdict((paired or {}).get(name), keys) if behind else None
        settled = verdict is not None and verdict[0]
        for m in keys:
            if m not in b:
                continue
            c, base, ci = float(candidate_metrics[m]), float(b[m]), _ci(candidate_metrics, m)
            if m not in behind:
                reasons.append(f"beats {name}: {m} {c:.4f}{ci} > {base:.4f}{_ci(b, m)}")
            elif not settled:
                passed = False
                reasons.append(f"does not beat {name}: {m} {c:.4f}{ci} <= {base:.4f}{_ci(b, m)}")
        if verdict is not None:
            said = "beats {} on" if settled else "{}: not beaten on"
            reasons.append(f"{said.format(name)} the paired differences: {verdict[1]}")
    if current_metrics is not None:
        cur = float(current_metrics[key])
        if cand >= cur - tolerance:
            reasons.append(
                f"within tolerance of current: {key} {cand:.4f} >= {cur:.4f} - {tolerance}"
            )
        else:
            passed = False
            reasons.append(f"worse than current: {key} {cand:.4f} < {cur:.4f} - {tolerance}")
    return GateDecision(passed=passed, reasons=reasons, metric=key, metrics=keys)


def _paired_verdict(
    diffs: Mapping[str, Mapping[str, float]] | None, keys: Sequence[str]
) -> tuple[bool, str] | None:
    """(whether the paired differences settle a disagreement for the candidate: some
    metric's 95 % interval lies above zero and none lies below; the differences in words),
    or None when any of ``keys`` has no interval."""
    got = [(m, (diffs or {}).get(m) or {}) for m in keys]
    bounds = [(float(d.get("lo", "nan")), float(d.get("hi", "nan"))) for _, d in got]
    if not got or any(not (lo == lo and hi == hi) for lo, hi in bounds):
        return None
    settles = any(lo > 0 for lo, _ in bounds) and not any(hi < 0 for _, hi in bounds)
    words = "; ".join(
        f"{m} {float(d['mean']):+.4f} [{lo:+.4f}, {hi:+.4f}]"
        + (" (ahead)" if lo > 0 else " (behind)" if hi < 0 else " (level: within the interval)")
        for (m, d), (lo, hi) in zip(got, bounds, strict=True)
    )
    return settles, f"{words} ({int(got[0][1].get('users', 0))} users)"


def _ci(m: Mapping[str, float], key: str) -> str:
    lo, hi = m.get(f"{key}_lo"), m.get(f"{key}_hi")
    return "" if lo is None or hi is None else f" [{float(lo):.3f}, {float(hi):.3f}]"


def gate_report(report: EvaluationReport, tolerance: float = 0.02) -> GateDecision:
    """The gate on an ``EvaluationReport``: the policy that would serve (two-tower + ranker
    when a ranker was evaluated) against every simple baseline (popularity, co-occurrence) on
    Recall@K and NDCG@10 (with the report's paired differences where it has them), and
    against the current model (Recall@K, ``tolerance``). A catalog that fits in the top K
    makes any full ranking's Recall@K 1, whatever its order, while popularity lists only the
    items with positives: the gate then decides on NDCG@10 alone, and says why (a 40-item
    history promoted a model on Recall@50 1.0 against 0.41)."""
    trivial, (key, *also) = report.catalog_within_k, report.decisive
    decision = gate(
        report.retrieval[report.served_key],
        report.baselines(),
        report.retrieval.get(CURRENT),
        tolerance,
        metric=key,
        also=also,
        paired=report.paired,
    )
    if trivial:
        decision.reasons.insert(0, f"the catalog ({report.catalog_size} items) fits in the top "
                                f"{report.k}: {report.recall_key} is 1 for any full ranking, so "
                                f"{report.ndcg_key} decides alone")  # fmt: skip
    return decision


COOCCURRENCE_POLICY = "cooccurrence"  # current.json's ``fallback``: co-occurrence serves


def cooccurrence_serves(report: EvaluationReport, min_users: int = MIN_GATE_USERS) -> str | None:
    """Why co-occurrence as it would serve (``COOCCURRENCE_SERVED``: its file through the
    blend's union, scored on the gate's window) should serve when nothing learned passed: it
    beats both popularity variants as the gate means it (ahead on Recall@K and NDCG@10, or,
    where they disagree, on the paired differences: ``report.paired_fallback``), on at least
    ``min_users`` users, and its files were evaluated. None otherwise (popularity, the simpler
    method, serves)."""
    co = report.retrieval.get(COOCCURRENCE_SERVED)
    keys = report.decisive
    if not co or not _servable(report) or not float(co.get("users", 0)) >= min_users:
        return None
    said = []
    for name in (POPULARITY_ALL_TIME, POPULARITY_TRAILING_7D):
        p = report.retrieval.get(name) or {}
        if any(m not in co or m not in p for m in keys):
            return None
        if all(float(co[m]) > float(p[m]) for m in keys):
            said += [f"{m} {float(co[m]):.4f}{_ci(co, m)} > {name} {float(p[m]):.4f}" for m in keys]
            continue
        verdict = _paired_verdict(report.paired_fallback.get(name), keys)
        if verdict is None or not verdict[0]:
            return None
        said.append(f"beats {name} on the paired differences: {verdict[1]}")
    return f"{'; '.join(said)} ({int(co['users'])} users)"


# what ``replaced`` keeps of the policy a fallback replaced (a co-occurrence's file too)
REPLACED_KEYS = ("two_tower", "ranking", "order", "fallback", "item_similarity", "promoted_at")


def _servable(report: EvaluationReport) -> bool:
    """Every file co-occurrence's bento copies was evaluated: its own, the towers (the ANN
    source) and the L2 (the ads' pCTR)."""
    return all(report.checkpoints.get(f"candidate_{k}") for k in ("cooccurrence", *KINDS))


def _newer_fit_holds(report: EvaluationReport) -> str | None:
    """Why the newer co-occurrence fit (``COOCCURRENCE_SERVED``) should replace the serving
    one (``CURRENT``, scored on the same window): at least as good on Recall@K and NDCG@10.
    None otherwise, or when either was not scored."""
    co, cur = report.retrieval.get(COOCCURRENCE_SERVED), report.retrieval.get(CURRENT)
    keys = (report.recall_key, report.ndcg_key)
    if not co or not cur or not all(k in co and k in cur for k in keys):
        return None
    if not _servable(report):
        return None
    if not all(float(co[k]) >= float(cur[k]) for k in keys):
        return None
    said = ", ".join(f"{k} {float(co[k]):.4f} >= {float(cur[k]):.4f}" for k in keys)
    return f"the newer fit scores at least as well as the serving one: {said}"


def promote(
    paths: Paths,
    report: EvaluationReport,
    decision: GateDecision | None = None,
    *,
    tolerance: float = 0.02,
) -> GateDecision:
    """Run the gate (unless ``decision`` is given) and update ``current.json`` accordingly.

    Pass: the pointer names the candidate pair and its evaluation. Fail: a learned model's
    pointer is left untouched (the previous model keeps serving) unless the current model,
    scored on the same window, no longer beats popularity beyond noise
    (``demotion.outscored_by_popularity``: behind it beyond the 95 % interval, as a candidate
    must be ahead beyond it to be promoted; ``decision.replaced`` says so). Then,
    and while popularity or co-occurrence serves, the best simple method that can serve takes
    the pointer: co-occurrence when, as it would serve, it beats both popularities
    (``cooccurrence_serves``: ``fallback`` names it, its fit of this window replaces an older
    one), else the popularity variant that scored best on this window; a replaced model is
    recorded with why.
    """
    decision = decision or gate_report(report, tolerance)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if decision.passed:
        write_policy(
            paths,
            {
                "policy": MODEL,
                "two_tower": report.checkpoints["candidate_two_tower"],
                # the L2 that serves: the DCN-v2 or, when it won, the sequence-aware one
                "ranking": report.checkpoints["candidate_ranking"],
                "ranker": report.ranker or "dcn_v2",
                # the order that serves, and the similarity file the blend reads
                "order": report.order or "dcn_v2",
                **(
                    {"item_similarity": report.checkpoints["candidate_similarity"]}
                    if report.order == "blend"
                    else {}
                ),
                # the cut in front of the DCN-v2 (the cascade the gate judged)
                **(
                    {"light_ranker": report.checkpoints["candidate_light"]}
                    if report.order == "dcn_v2" and report.checkpoints.get("candidate_light")
                    else {}
                ),
                "evaluation": report.to_dict(),
                "reasons": decision.reasons,
                "promoted_at": now,
            },
        )
        return decision
    was = current_policy(paths)
    stale = outscored_by_popularity(report)
    learned = was["policy"] == MODEL and was.get("fallback") != COOCCURRENCE_POLICY
    co = cooccurrence_serves(report)
    if co is None and not learned and was["policy"] == MODEL and stale is None:
        # co-occurrence serves and still holds against popularity: its newer fit takes over
        # when it scores at least as well as the one serving (new items get neighbours)
        co = _newer_fit_holds(report)
    # a demotion is said first among what the gate check and the CLI show, not only recorded in
    # current.json's ``replaced``
    decision.replaced = replaced_by(report, learned, co is not None) or ""
    if decision.replaced:
        decision.reasons.append(decision.replaced)
    if co is not None and (not learned or stale is not None):
        # nothing learned passed: the best simple method that serves, co-occurrence here
        decision.reasons.append(f"nothing learned passed; co-occurrence serves: {co}")
        replaced = {k: was[k] for k in REPLACED_KEYS if k in was}
        write_policy(
            paths,
            {
                "policy": MODEL,
                "fallback": COOCCURRENCE_POLICY,
                # the towers only retrieve (the ANN source, their weight 0); the L2 prices ads
                "two_tower": report.checkpoints["candidate_two_tower"],
                "ranking": report.checkpoints["candidate_ranking"],
                "ranker": report.ranker or "dcn_v2",
                "order": "blend",
                "item_similarity": report.checkpoints["candidate_cooccurrence"],
                "evaluation": report.to_dict(),
                "reasons": [*decision.reasons],
                "promoted_at": now,
                **({"replaced": {**replaced, "reasons": [stale[1]]}}
                   if learned and stale is not None else {}),
            },
        )  # fmt: skip
    elif stale is not None and was["policy"] == MODEL:
        variant, why = stale
        if not decision.replaced:  # a co-occurrence that popularity now beats gives way
            decision.reasons.append(f"the current model no longer beats popularity: {why}; "
                                    f"popularity ({variant}) serves")  # fmt: skip
        replaced = {k: was[k] for k in REPLACED_KEYS if k in was}
        write_policy(
            paths,
            {"policy": POPULARITY, "variant": variant, "updated_at": now,
             "replaced": {**replaced, "reasons": [why]}},
        )  # fmt: skip
    elif was["policy"] == POPULARITY:
        key = decision.metric
        all_time = report.retrieval[POPULARITY_ALL_TIME][key]
        recent = report.retrieval[POPULARITY_TRAILING_7D][key]
        if all_time == all_time and recent == recent:  # NaN: no evaluation users, no choice
            variant = "all_time" if all_time > recent else "trailing_7d"
            write_policy(paths, {"policy": POPULARITY, "variant": variant, "updated_at": now})
    return decision


__all__ = [
    "DEFAULT_POLICY",
    "MIN_GATE_USERS",
    "GateDecision",
    "TrainResult",
    "cooccurrence_serves",
    "current_policy",
    "evaluation_path",
    "gate",
    "gate_report",
    "latest_checkpoint",
    "next_checkpoint_path",
    "outscored_by_popularity",
    "pointer_path",
    "promote",
    "replaced_by",
    "train_next",
    "training_base",
    "write_policy",
]
