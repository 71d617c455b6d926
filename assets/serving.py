"""Stage ``serving``: the BentoML bundle of the current policy.

``recommender_bento`` writes the serving bundle (promoted models, the index, the Feast
catalog, a lineage manifest) and runs ``bentoml build`` of ``serving/service.py`` into the
Bento store under the home. It depends on the index, whose recall check is blocking, and on
the evaluation, whose promotion gate is blocking: a refused model or a bad index never
reaches a bento.
"""

# No `from __future__ import annotations`: Dagster reads the context annotation.
import os

from dagster import (
    AssetExecutionContext,
    AssetRecordsFilter,
    DagsterInstance,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets import keys
from assets.metadata import bento_facts, home_path
from recassets.bento.code import installed_digest
from resources import BentoStoreResource, LakeResource

# recassets.bento.bundle is imported inside the bodies: it loads torch and torchrec (about 11 s),
# and every run process, the daemon and the code server import this module to learn
# the definitions; only the steps that train or serve need torch
# (tests/unit/test_layering.py checks that the definitions load without it).

GROUP = "serving"

# The tags a materialization's provenance is read from, one per input asset: the input's data
# version and the event (storage id) it was read from (dagster._core.definitions.data_version
# .INPUT_DATA_VERSION_TAG_PREFIX / INPUT_EVENT_POINTER_TAG_PREFIX, Dagster 1.13.27); not
# exported by `dagster`, spelled here (tests/dagster/test_serving_staleness.py checks them).
INPUT_DATA_VERSION_TAG_PREFIX = "dagster/input_data_version"
INPUT_EVENT_POINTER_TAG_PREFIX = "dagster/input_event_pointer"


def served_training_data(instance: DagsterInstance) -> dict[str, str]:
    """The provenance tags of the bento's ``training/examples_version`` input: the version the
    latest ``model_evaluation`` read, not the one observed now; {} (Dagster's own) when no
    evaluation recorded one (none yet, or one built before that edge existed).

    Why: Dagster records each input's current version when an asset is built, and its
    staleness compares only those with the inputs' versions now (1.13 does not pass a
    parent's staleness on). The automation rebuilds the bento for a new online day
    (``SERVING_EAGER``: new items embedded, indexed, served), models retrained or not; after a
    change of the training data that rebuild recorded the new version, and the bento showed
    FRESH while its five models and ``model_evaluation`` showed STALE. The bento serves what
    the latest evaluation's gate chose (``P.promote``), so it grew from the data that
    evaluation read: recorded so, it shows stale ("training/examples_version has a new
    dependency data version") until the models are retrained, evaluated and bundled. The
    rebuild itself is kept: it serves the new items. A candidate the gate refuses leaves the
    older models serving and the bento fresh, as the models and the evaluation are: the gate's
    decision, not a lag."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=keys.EVALUATION), limit=1
    ).records
    event = records[0].asset_materialization if records else None
    tags = (event.tags or {}) if event is not None else {}
    name = keys.TRAINING_DATA.to_user_string()
    version = tags.get(f"{INPUT_DATA_VERSION_TAG_PREFIX}/{name}")
    if version is None:
        return {}
    pointer = tags.get(f"{INPUT_EVENT_POINTER_TAG_PREFIX}/{name}")
    return {
        f"{INPUT_DATA_VERSION_TAG_PREFIX}/{name}": version,
        **({f"{INPUT_EVENT_POINTER_TAG_PREFIX}/{name}": pointer} if pointer else {}),
    }


@asset(
    key=keys.RECOMMENDER_BENTO,
    group_name=GROUP,
    # TRAINING_DATA: what is served shows stale when the data its models grew from changed
    # (recorded as the evaluation read it: served_training_data; its eager condition ignores
    # that dep's observations: sensors/conditions.py)
    deps=[keys.ITEM_INDEX, keys.EVALUATION, keys.TRAINING_DATA],
    kinds={"bentoml"},
    # Backticks: the UI renders descriptions as Markdown, which dropped the tag's `<time>`,
    # `<policy>` and `<digest>` as HTML (the page read "recassets_recommender:--").
    description="`bentoml build` of `serving/service.py` with the promoted two-tower and ranker "
    "(or the popularity fallback while none passed the gate), the FAISS index, the Feast "
    "catalog and a lineage manifest; tagged `recassets_recommender:<time>-<policy>-<digest>` "
    "in the Bento store under `RECASSETS_HOME/bentoml`. Serve it with `recassets serve`.",
    # the digest of the code a bento carries (serving/service.py and recassets/): after an
    # upgrade the UI says the served bento's code changed (recassets.bento.code)
    code_version=installed_digest(),
)
def recommender_bento(
    context: AssetExecutionContext, lake: LakeResource, bento_store: BentoStoreResource
) -> MaterializeResult:
    from recassets.bento import bundle as B
    from recassets.bento.store import recent_model_sha256s
    from recassets.funnel.embedding_store import publish_if_asked
    from recassets.run_settings import publishing, torch_variant

    # Every setting the step reads, parsed before anything is written: a bad
    # RECASSETS_EMBEDDINGS_KEEP_BENTOS had failed the step with the bento already in the
    # store and the rows in Redis (the code location checks them at load as well).
    variant = torch_variant(os.environ)  # RECASSETS_BENTO_TORCH
    rows = publishing(os.environ)  # RECASSETS_SERVE_EMBEDDINGS, _REDIS_URL, _EMBEDDINGS_KEEP_*
    paths = bento_store.paths(lake.paths())
    with B.staged_bundle(paths) as bundle:  # a staging folder of this run's own
        tag = B.build_bento(paths, bundle, variant=variant)
        # the bento's manifest: its digest (the tag's) covers the code record it added
        manifest = B._read_json(B.bento_folder(paths, tag) / "src" / "bundle" / "manifest.json")
        # RECASSETS_SERVE_EMBEDDINGS=redis: the models' rows to Redis, for replicas that keep
        # only a cache of them (recassets.funnel.embedding_store)
        published = publish_if_asked(
            bundle, manifest, os.environ, lambda n: recent_model_sha256s(paths, n), rows
        )
    context.log.info(f"built {tag}")
    if published:
        context.log.info(f"embedding rows published to Redis: {published}")
    lineage = manifest["lineage"]
    return MaterializeResult(
        # the training data its models grew from, not the data now: stale until retrained
        tags=served_training_data(context.instance),
        metadata={
            "tag": tag,
            "policy": manifest["policy"].get("policy"),
            "digest": manifest["digest"],
            "bento": home_path(paths, str(B.bento_folder(paths, tag))),
            "lineage_facts": bento_facts(paths, tag, lineage),
            # Plain text, so the UI shows them in full on the asset's page (JSON and Markdown
            # open behind a button)
            **{
                f"{part}_sha256": lineage[part]["sha256"]
                for part in ("two_tower", "ranking")
                if part in lineage
            },
            "feast_registry_sha256": (lineage.get("feast") or {}).get("registry_sha256") or "",
            "trace": f"recassets lineage {tag}",
            "lineage": MetadataValue.json(lineage),
            "serve": MetadataValue.md(f"`recassets serve --tag {tag}`"),
        },
    )


ASSETS = [recommender_bento]
